"""Packaging for Scrapyd eggs: ships the `influencers` package and its settings only."""
from setuptools import find_packages, setup

setup(
    name="influencers",
    version="0.1.0",
    packages=find_packages(include=["influencers", "influencers.*"]),
    package_data={"influencers.api": ["static/*"]},
    entry_points={"scrapy": ["settings = influencers.settings"]},
    zip_safe=False,
)
