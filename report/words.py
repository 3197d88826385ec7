"""Small helpers for the site's English, shared by the chapters (as Jinja filters) and the figures."""


def with_article(name):
    """'a 7', 'an 8', 'an Ankle boot', 'a T-shirt/top': the article that goes with a class name."""
    name = str(name)
    return ("an " if name[:1].lower() in ("a", "e", "i", "o", "8") else "a ") + name
