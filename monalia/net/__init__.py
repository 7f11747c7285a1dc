"""Networking for plugins and the core: the URL policy that judges every URL and redirect hop
(`url_policy`), and the HTTP client every source uses (`http`)."""
