"""A realistic ~40 KB HTML product page, built once: the body of /big-page/, which measures what
compression costs (not template rendering), and the fixture of bench/micro/compress_bench.cpp.

Deterministic (a fixed seed): `python3 shop/big_page.py > bench/micro/fixtures/page40k.html`
regenerates the fixture byte for byte.
"""
import random

_ADJECTIVES = ("Classic", "Rugged", "Compact", "Deluxe", "Vintage", "Modern", "Portable", "Ergonomic", "Organic",
               "Handmade", "Wireless", "Recycled", "Premium", "Lightweight", "Solid", "Nordic", "Urban", "Smart")
_NOUNS = ("Chair", "Lamp", "Backpack", "Kettle", "Notebook", "Headphones", "Desk", "Mug", "Jacket", "Blender",
          "Bicycle", "Tent", "Speaker", "Watch", "Pillow", "Skillet", "Umbrella", "Keyboard", "Planter", "Rug")
_CATEGORIES = ("Home", "Kitchen", "Outdoors", "Office", "Audio", "Clothing", "Garden", "Sports")
_TAGS = ("new", "sale", "eco", "bestseller", "limited", "gift", "bundle", "refurbished")
_WORDS = ("built", "to", "last", "with", "a", "soft", "matte", "finish", "and", "stainless", "steel", "frame",
          "ships", "in", "plastic-free", "packaging", "designed", "for", "everyday", "use", "easy", "clean",
          "two-year", "warranty", "water", "resistant", "fits", "most", "spaces", "available", "three", "colours")


def build(target=40_000, seed=20261127):
    rng = random.Random(seed)
    head = (
        '<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "  <title>Products · gantry demo</title>\n"
        '  <link rel="stylesheet" href="/static/shop/style.css">\n'
        '  <script src="/static/shop/app.js" defer></script>\n</head>\n<body>\n  <header>\n'
        '    <a class="brand" href="/">gantry demo shop</a>\n    <nav>\n'
        '      <a href="/">Products</a>\n      <a href="/products/new/">Add product</a>\n'
        '      <a href="/upload/">Upload</a>\n      <a href="/api/products/">API</a>\n    </nav>\n'
        "  </header>\n  <main>\n<h1>Products</h1>\n"
        '<table class="products">\n  <thead><tr><th>Name</th><th>Category</th><th>Tags</th>'
        '<th class="num">Price</th></tr></thead>\n  <tbody>\n'
    )
    tail_template = ('  </tbody>\n</table>\n<p class="count">%d products</p>\n  </main>\n'
                     '  <footer>Rendered at <time data-rendered="2026-11-27T00:00:00+00:00">2026-11-27 00:00:00 UTC'
                     "</time></footer>\n</body>\n</html>\n")
    rows = []
    size = len(head) + len(tail_template) + 8
    pk = 0
    while True:
        pk += 1
        name = "%s %s %s" % (rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") +
                             str(rng.randint(10, 999)))
        tags = "".join('<span class="tag">%s</span>' % t for t in rng.sample(_TAGS, rng.randint(0, 3))) or "–"
        description = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
        row = (
            "    <tr>\n"
            '      <td><a href="/products/%d/" title="%s">%s</a></td>\n'
            "      <td>%s</td>\n"
            "      <td>%s</td>\n"
            '      <td class="num">%d.%02d</td>\n'
            "    </tr>\n"
        ) % (pk, description, name, rng.choice(_CATEGORIES), tags, rng.randint(3, 900), rng.randint(0, 99))
        if size + len(row.encode()) > target:
            break
        rows.append(row)
        size += len(row.encode())
    return (head + "".join(rows) + tail_template % len(rows)).encode("utf-8")


PAGE = build()

if __name__ == "__main__":
    import sys
    sys.stdout.buffer.write(PAGE)
