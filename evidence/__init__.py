"""Evidence transfer: cases, items, users, custody and the web app that composes them."""
