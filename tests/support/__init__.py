"""What the tests share: local servers that speak the sources' protocols (and fail like them),
projects and catalogs built from the fixtures, drawn images, process helpers, a Ray cluster."""
