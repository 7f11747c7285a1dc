"""The stages of the pipeline: harvest, images, label, train, enrich, publish, and the queries
and reports over their output. Each records its runs in the catalog."""
