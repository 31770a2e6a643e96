"""A small message board built on pixie_web: ``python msgboard.py`` → http://127.0.0.1:8001

What it shows: templates with a layout (``% rebase``) and includes, static files
(``app.static``), form handling with validation messages, image uploads checked by
their magic bytes, server-side sessions (``Sessions`` + ``SQLiteStore``) for the
"Posting as <name>" memory and the CSRF token, a signed cookie remembering the last
post the visitor has seen (new posts are highlighted), post/redirect/get, and SQLite
storage with one connection per request.

Settings (environment variables):

    MSGBOARD_PORT     port to listen on (default 8001; always on 127.0.0.1)
    MSGBOARD_DB       SQLite database file (default msgboard/data/msgboard.sqlite3)
    MSGBOARD_UPLOADS  directory for uploaded images (default msgboard/data/uploads)
    MSGBOARD_SECRET   secret for the session and signed cookies; when unset, a random one
                      is generated once and kept in ``<database>.secret`` (mode 0600)

Tests build their own instance with ``create_app(db_path, uploads_dir, secret)``.
"""
import hmac
import os
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass

from pixie_web import App, RedirectResponse, Response, RouteType, Sessions, SQLiteStore, template

HERE = os.path.dirname(os.path.abspath(__file__))
VIEWS_DIR = os.path.join(HERE, "msgboard", "views")
STATIC_DIR = os.path.join(HERE, "msgboard", "static")
DEFAULT_DATA_DIR = os.path.join(HERE, "msgboard", "data")

MAX_NAME_LENGTH = 40
MAX_MESSAGE_LENGTH = 1000
MAX_IMAGE_BYTES = 2 * 1024 * 1024
# A body a little larger than the biggest valid post, so an oversized image still gets a
# friendly validation message instead of a bare 413 (bodies beyond this do get the 413).
MAX_BODY_BYTES = 3 * MAX_IMAGE_BYTES
POSTS_PER_PAGE = 50
REMEMBERED_OWN_POSTS = 50
SEEN_COOKIE = "msgboard_seen"
SEEN_COOKIE_MAX_AGE = 365 * 24 * 3600
DEFAULT_NAME = "Anonymous"

# Accepted image types, recognised by their first bytes (never by file name or the
# Content-Type the browser claims): extension, test.
IMAGE_SIGNATURES = (
    (".png", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    (".jpg", lambda head: head.startswith(b"\xff\xd8\xff")),
    (".gif", lambda head: head[:6] in (b"GIF87a", b"GIF89a")),
    (".webp", lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP"),
)

SECURITY_HEADERS = {
    # Only our own CSS, JS and images; no inline script can run even if escaping failed.
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; "
                               "script-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class Post:
    id: int
    name: str
    message: str
    image: str | None
    created: float

    @property
    def created_iso(self):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))

    @property
    def created_text(self):
        return time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(self.created))


# ---- Storage ---------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT NOT NULL,
    message TEXT NOT NULL,
    image   TEXT,
    created REAL NOT NULL
)
"""


class Board:
    """The posts table. Every call opens its own connection, so handlers running in
    different threads (or processes) never share one."""

    def __init__(self, path):
        self.path = path
        with closing(self._connect()) as connection, connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(SCHEMA)

    def _connect(self):
        connection = sqlite3.connect(self.path, timeout=10)
        connection.row_factory = sqlite3.Row
        return connection

    def add(self, name, message, image=None):
        """Store a post; return its id."""
        with closing(self._connect()) as connection, connection:
            cursor = connection.execute(
                "INSERT INTO posts (name, message, image, created) VALUES (?, ?, ?, ?)",
                (name, message, image, time.time()))
            return cursor.lastrowid

    def latest(self, limit=None, before=None):
        """Newest first (POSTS_PER_PAGE of them); with ``before``, only posts older than that id."""
        query = "SELECT id, name, message, image, created FROM posts"
        arguments = []
        if before is not None:
            query += " WHERE id < ?"
            arguments.append(before)
        query += " ORDER BY id DESC LIMIT ?"
        arguments.append(limit or POSTS_PER_PAGE)
        with closing(self._connect()) as connection:
            return [Post(**dict(row)) for row in connection.execute(query, arguments)]

    def has_older(self, post_id):
        with closing(self._connect()) as connection:
            return connection.execute(
                "SELECT 1 FROM posts WHERE id < ? LIMIT 1", (post_id,)).fetchone() is not None


# ---- Helpers ---------------------------------------------------------------------------------

def image_extension(head):
    """The file extension for an accepted image type, judged by its first bytes, or None."""
    for extension, matches in IMAGE_SIGNATURES:
        if matches(head):
            return extension
    return None


def load_or_create_secret(db_path):
    """MSGBOARD_SECRET, else a random secret generated once and kept beside the database."""
    secret = os.environ.get("MSGBOARD_SECRET")
    if secret:
        return secret
    path = db_path + ".secret"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process may have just created it: wait for its content.
        for _ in range(50):
            with open(path, encoding="ascii") as file:
                secret = file.read().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it or set MSGBOARD_SECRET")
    secret = secrets.token_urlsafe(48)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secret + "\n")
    return secret


def render(name, **variables):
    """template() looked up in the board's own views directory (the global TEMPLATE_PATH,
    which other apps in the process may use, is left alone)."""
    return template(name, template_lookup=[VIEWS_DIR], **variables)


def csrf_token(session):
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid(session, submitted):
    expected = session.get("csrf")
    return bool(expected) and isinstance(submitted, str) and hmac.compare_digest(
        expected.encode(), submitted.encode())


# ---- Application -----------------------------------------------------------------------------

def create_app(db_path, uploads_dir, secret=None):
    """Build a message board storing posts in ``db_path`` and images in ``uploads_dir``."""
    db_path = os.path.abspath(db_path)
    uploads_dir = os.path.abspath(uploads_dir)
    os.makedirs(os.path.dirname(db_path), exist_ok=True)
    os.makedirs(uploads_dir, exist_ok=True)
    secret = secret or load_or_create_secret(db_path)
    board = Board(db_path)

    app = App(max_body_size=MAX_BODY_BYTES)
    app.board = board
    app.uploads_dir = uploads_dir
    sessions_path = os.path.splitext(db_path)[0] + ".sessions.sqlite3"
    app.install(Sessions(secret, store=SQLiteStore(sessions_path), cookie_name="msgboard_session"))
    app.static("/static", STATIC_DIR, max_age=3600)
    # Upload names are random and never reused, so browsers may cache them for long.
    app.static("/uploads", uploads_dir, max_age=30 * 24 * 3600)

    @app.after_request
    def security_headers(request, response):
        for name, value in SECURITY_HEADERS.items():
            if name not in response.headers:
                response.headers[name] = value
        return response

    def board_page(request, status=200, errors=(), form=None, edit_name=False):
        session = request.session
        before = _int_or_none(request.params.get("before"))
        posts = board.latest(before=before)
        seen = request.get_cookie(SEEN_COOKIE, secret=secret)
        last_seen = seen if isinstance(seen, int) and not isinstance(seen, bool) else None
        own = set(session.get("own_posts", ()))
        new_ids = {post.id for post in posts
                   if last_seen is not None and post.id > last_seen and post.id not in own}
        name = session.get("name")
        flash = session.pop("flash", None)
        html = render(
            "board", posts=posts, new_ids=new_ids, own_ids=own, errors=list(errors),
            form=form or {}, user_name=name, edit_name=edit_name or not name, flash=flash,
            csrf_token=csrf_token(session), max_message=MAX_MESSAGE_LENGTH,
            max_name=MAX_NAME_LENGTH, older=posts[-1].id if posts and board.has_older(
                posts[-1].id) else None, before=before)
        response = Response(html, status, content_type="text/html; charset=utf-8")
        newest_id = posts[0].id if posts else 0      # 0: an empty board was seen
        if before is None and (last_seen is None or newest_id > last_seen):
            response.set_cookie(SEEN_COOKIE, newest_id, max_age=SEEN_COOKIE_MAX_AGE,
                                secret=secret)
        return response

    @app.get("/", route_type=RouteType.thread, name="index")
    def index(request):
        """The board: the form and the newest posts."""
        return board_page(request, edit_name=request.params.get("change_name") == "1")

    @app.post("/posts", route_type=RouteType.thread, name="create_post")
    def create_post(request):
        """Validate and store a post, then redirect (post/redirect/get)."""
        session = request.session
        form = request.form
        if not csrf_valid(session, form.get("csrf_token")):
            return board_page(request, 403, ["Your form has expired. Please try again."],
                              {"name": form.get("name", ""), "message": form.get("message", "")})
        # A name field in the form (first post, or "change name") wins, even when emptied;
        # otherwise the name remembered in the session is used.
        if "name" in form:
            name = " ".join(form.get("name", "").split())
        else:
            name = session.get("name", "")
        message = (form.get("message") or "").replace("\r\n", "\n").strip()
        errors = []
        if len(name) > MAX_NAME_LENGTH:
            errors.append(f"Your name is too long ({len(name)} characters; "
                          f"at most {MAX_NAME_LENGTH}).")
        if not message:
            errors.append("Please write a message.")
        elif len(message) > MAX_MESSAGE_LENGTH:
            errors.append(f"Your message is too long ({len(message)} characters; "
                          f"at most {MAX_MESSAGE_LENGTH}).")
        upload = request.files.get("image")
        if upload is not None and upload.size == 0 and not upload.raw_filename:
            upload = None           # the file input was left empty
        extension = None
        if upload is not None:
            if upload.size > MAX_IMAGE_BYTES:
                errors.append("The image is too large (at most 2 MB).")
            else:
                extension = image_extension(upload.file.read(16))
                upload.file.seek(0)
                if extension is None:
                    errors.append("The image must be a PNG, JPEG, GIF or WebP file.")
        if errors:
            return board_page(request, 400, errors, {"name": name, "message": message},
                              edit_name="name" in form)
        image_name = None
        if upload is not None:
            image_name = secrets.token_hex(16) + extension
            upload.save(os.path.join(uploads_dir, image_name))
        post_id = board.add(name or DEFAULT_NAME, message, image_name)
        if name:
            session["name"] = name
        else:
            session.pop("name", None)
        session["own_posts"] = (session.get("own_posts", []) + [post_id])[-REMEMBERED_OWN_POSTS:]
        session["flash"] = "Your message has been posted."
        return RedirectResponse(f"/#post-{post_id}", 303)

    @app.get("/posts")
    def posts_page(request):
        """Someone reloading the URL of a rejected form gets the board, not a 405."""
        return RedirectResponse("/", 303)

    @app.error(413)
    def too_large(request, error):
        return Response(render("too_large", max_mb=MAX_IMAGE_BYTES // (1024 * 1024)), 413,
                        content_type="text/html; charset=utf-8")

    return app


def _int_or_none(value):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def main():
    db_path = os.environ.get("MSGBOARD_DB") or os.path.join(DEFAULT_DATA_DIR, "msgboard.sqlite3")
    uploads_dir = os.environ.get("MSGBOARD_UPLOADS") or os.path.join(DEFAULT_DATA_DIR, "uploads")
    port = int(os.environ.get("MSGBOARD_PORT") or 8001)
    app = create_app(db_path, uploads_dir)
    app.run(host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
