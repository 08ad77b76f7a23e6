"""The core: configuration, the database and one owner module per table family.

Nothing here imports Scrapy, so the exporter, the CLI and the API use it as it is; the Scrapy
side (`spiders`, `middlewares`, `pipelines`, `extensions`) is built on top of it.
"""
