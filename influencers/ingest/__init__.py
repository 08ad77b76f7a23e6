"""The ingestion run's logic, without Scrapy, Twisted or I/O.

`plan.PagePlan` decides which pages of a task to read and where it resumes; `run.TaskRun` is the
state machine of one claimed task built around it; `reasons` holds the codes a crawl closes with
and why a task cannot be claimed. The Scrapy side (`influencers.extensions`, the spider, the
middleware, the pipeline) imports this package; nothing here imports it back.
"""
