"""The Scrapy part of monalia (IIIF spider and image fetching), installed as monalia.harvesters."""
