"""Where work runs when it leaves this process: crawl processes (Scrapy), and a Ray cluster for
the image and enrich stages. Jobs are typed (`jobs`) and travel as JSON."""
