"""The shop's tables, created and seeded when a server process starts (no migrations)."""

from __future__ import annotations

import os
import sqlite3

from django.conf import settings
from django.db import models

SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT, category TEXT,
                                     price REAL);
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT UNIQUE, password TEXT,
                                  email TEXT);
CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY, product_id INTEGER, author TEXT,
                                    body TEXT);
CREATE TABLE IF NOT EXISTS canary (id INTEGER PRIMARY KEY, secret TEXT);
INSERT OR IGNORE INTO products VALUES (1, 'Desk lamp', 'home', 24.5), (2, 'Tea kettle',
    'kitchen', 31.0), (3, 'Notebook', 'office', 4.2), (4, 'Fountain pen', 'office', 58.0);
INSERT OR IGNORE INTO users VALUES (1, 'admin', 's3cret-admin', 'admin@shop.example'),
    (2, 'alice', 'wonderland', 'alice@shop.example');
INSERT OR IGNORE INTO canary VALUES (1, 'canary-secret-1'), (2, 'canary-secret-2');
"""

FILES = (("report-2024.pdf", "%PDF- yearly report"), ("my..notes.txt", "notes"),
         ("manuals/lamp.txt", "lamp manual"))  # fmt: skip


class Product(models.Model):
    name = models.TextField()
    category = models.TextField()
    price = models.FloatField()

    class Meta:
        db_table = "products"
        managed = False

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "category": self.category, "price": self.price}


class Review(models.Model):
    product_id = models.IntegerField()
    author = models.TextField()
    body = models.TextField()

    class Meta:
        db_table = "reviews"
        managed = False


def create_schema() -> None:
    """Every worker runs this at start; the statements are idempotent. sqlite3 itself, not
    Django's connection: under uvicorn this runs inside the event loop, where Django refuses
    synchronous database calls."""
    connection = sqlite3.connect(settings.DB_PATH, timeout=30)
    try:
        with connection:
            connection.executescript(SCHEMA)
    finally:
        connection.close()
    os.makedirs(os.path.join(settings.FILES_DIR, "manuals"), exist_ok=True)
    for name, text in FILES:
        with open(os.path.join(settings.FILES_DIR, name), "w") as file:
            file.write(text)
