"""The stages of the pipeline, one module or package each: harvest, images, label, train,
enrich, publish. `pipeline` declares them in order, with what each needs and its command."""
