"""Scrapy commands of this project (``COMMANDS_MODULE``): they replace Scrapy's of the same name."""
