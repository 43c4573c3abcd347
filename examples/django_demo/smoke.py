#!/usr/bin/python3
"""Exercise every view of a *running* demo server and fail loudly.

    /usr/bin/python3 examples/django_demo/smoke.py http://127.0.0.1:8123 [--skip-static]

Works against any server (gunicorn, gantry, ...): it only speaks HTTP.
Expects setup.sh to have run (seeded rows, collected static files).
/static/ URLs are checked byte for byte against staticfiles/; pass
--skip-static for a server that serves no static files (gunicorn with
DEBUG off). Exit status 0 = all good.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import time

import requests

STATIC_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "staticfiles")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok   {what}")


def main(base, skip_static):
    s = requests.Session()

    # HTML list with related data (FK category, M2M tags) and static assets.
    r = s.get(f"{base}/")
    check(r.status_code == 200 and "text/html" in r.headers["Content-Type"], "GET / is HTML 200")
    check("The Pragmatic Programmer" in r.text and "Books" in r.text and 'class="tag"' in r.text,
          "GET / lists seeded products with category and tags")
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', r.text)
    check(len(assets) == 2, "base template links one CSS and one JS file")
    for asset in [] if skip_static else assets:
        a = s.get(f"{base}{asset}")
        with open(os.path.join(STATIC_ROOT, asset[len("/static/"):]), "rb") as f:
            on_disk = f.read()
        check(a.status_code == 200 and a.content == on_disk, f"GET {asset} matches staticfiles/")

    # JSON API.
    r = s.get(f"{base}/api/products/")
    data = r.json()
    check(r.status_code == 200 and r.headers["Content-Type"] == "application/json",
          "GET /api/products/ is JSON")
    check(data["count"] == len(data["products"]) >= 9, "API lists the seeded products")
    first = data["products"][0]
    r = s.get(f"{base}/api/products/{first['id']}/")
    check(r.json()["name"] == first["name"], "GET /api/products/<id>/ returns that product")
    r = s.get(f"{base}/api/products/", params={"category": "coffee"})
    check({p["category"]["slug"] for p in r.json()["products"]} == {"coffee"},
          "GET /api/products/?category=coffee filters")

    # Form with CSRF: GET sets the cookie, invalid POST re-renders, valid POST redirects.
    r = s.get(f"{base}/products/new/")
    check(r.status_code == 200 and "csrftoken" in s.cookies, "GET /products/new/ sets csrftoken")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text).group(1)
    category_id = re.search(r'<option value="(\d+)"', r.text).group(1)
    r = requests.post(f"{base}/products/new/", data={"name": "x", "price": "1", "category": category_id})
    check(r.status_code == 403, "POST without CSRF token is rejected 403")
    r = s.post(f"{base}/products/new/", data={"csrfmiddlewaretoken": token, "name": "", "price": "-1", "category": category_id})
    check(r.status_code == 400 and "errorlist" in r.text, "invalid POST re-renders with errors")
    name = f"Smoke product {time.time_ns()}"
    r = s.post(f"{base}/products/new/", allow_redirects=False,
               data={"csrfmiddlewaretoken": token, "name": name, "price": "9.99",
                     "category": category_id, "description": "made by smoke.py"})
    check(r.status_code == 302 and re.fullmatch(r"/products/\d+/", r.headers["Location"]),
          "valid POST redirects to the new product")
    r = s.get(f"{base}{r.headers['Location']}")
    check(r.status_code == 200 and name in r.text, "the created product's page shows it")

    # Multipart upload, bigger than FILE_UPLOAD_MAX_MEMORY_SIZE so Django spools to disk.
    payload = os.urandom(3 * 1024 * 1024 + 17)
    r = s.post(f"{base}/upload/", files={"file": ("blob.bin", payload, "application/octet-stream")})
    got = r.json()
    check(r.status_code == 200 and got["name"] == "blob.bin" and got["size"] == len(payload)
          and got["sha256"] == hashlib.sha256(payload).hexdigest(), "POST /upload/ hashes the file")
    r = s.post(f"{base}/upload/", data={"nofile": "1"})
    check(r.status_code == 400, "POST /upload/ without a file is 400")

    # Streaming: lines arrive spread over time, not all at once.
    t0 = time.monotonic()
    arrivals = []
    with s.get(f"{base}/stream/", params={"n": 30}, stream=True) as r:
        check(r.status_code == 200, "GET /stream/?n=30 is 200")
        for line in r.iter_lines():
            arrivals.append((time.monotonic() - t0, line))
    check(len(arrivals) == 30 and arrivals[-1][1].startswith(b"line 30 of 30"), "stream yields 30 lines")
    check(arrivals[-1][0] - arrivals[0][0] > 0.2, "stream lines arrive over time (>0.2 s apart)")

    r = s.get(f"{base}/boom/")
    check(r.status_code == 500, "GET /boom/ is 500")
    r = s.get(f"{base}/ping/")
    check(r.status_code == 200 and r.text == "ok", "GET /ping/ is 'ok'")
    r = s.get(f"{base}/no/such/page/")
    check(r.status_code == 404, "unknown URL is 404")
    r = s.get(f"{base}/admin/", allow_redirects=False)
    check(r.status_code == 302 and "/admin/login/" in r.headers["Location"], "GET /admin/ redirects to login")
    print("all checks passed")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:8123")
    parser.add_argument("--skip-static", action="store_true",
                        help="do not fetch /static/ files (server serves none)")
    args = parser.parse_args()
    main(args.base_url.rstrip("/"), args.skip_static)
