"""Scrapy spiders: a seed-list spider (file or Kafka topic) and a sitemap spider."""
