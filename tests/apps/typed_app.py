"""App for tests/test_typed.py: typed handler parameters (SPEC 14) on every route type.

Every handler is a module-level function, and every type it binds is a module-level class,
so pool workers can import (and unpickle) them by name.  In-process handlers put what they
received in ``RECEIVED`` (by route path) so a TestClient test can look at the very objects;
the pool handler, which runs elsewhere, describes them in its answer instead.  Every call
of the pool handler leaves a marker file in the directory named by the query's ``dir``
(whatever arguments it got), so a test can count the calls a worker really received.
"""
import dataclasses
import enum
import functools
import os
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, TypedDict

from pixie_web import App, FileUpload, Param, ProcessType, RouteType, proc_env

app = App()

RECEIVED = {}       # route path -> the keyword arguments its handler got (in-process routes)


class Color(enum.Enum):
    red = "r"
    green = "g"


@dataclass
class Line:
    sku: str
    qty: Annotated[int, Param(ge=1)]
    price: Decimal = Decimal("0")


@dataclass
class Customer:
    name: str
    email: str | None = None


@dataclass
class Order:
    customer: Customer
    lines: list[Line]
    tags: list[str] = field(default_factory=list)
    priority: int = 0
    due: date | None = None


class _AddressOptions(TypedDict, total=False):
    floor: int


class Address(_AddressOptions):
    street: str
    number: int


@dataclass
class Signup:
    """A flat dataclass: it can come from a form as well as from JSON."""
    name: str
    age: int
    newsletter: bool = False


@dataclass
class Item:
    """The example of SPEC 14."""
    name: str
    qty: int = 1
    tags: list[str] | None = None


@dataclass
class Receipt:
    """A return value with every type that JSON writes as a string."""
    id: uuid.UUID
    day: date
    at: datetime
    total: Decimal
    color: Color
    lines: list[Line]


RECEIPT = Receipt(uuid.UUID("12345678-1234-5678-1234-567812345678"), date(2024, 2, 29),
                  datetime(2024, 2, 29, 13, 14, 15, 160000), Decimal("10.50"), Color.green,
                  [Line("a", 2, Decimal("5.25"))])
RECEIPT_JSON = {"id": "12345678-1234-5678-1234-567812345678", "day": "2024-02-29",
                "at": "2024-02-29T13:14:15.160000", "total": "10.50", "color": "g",
                "lines": [{"sku": "a", "qty": 2, "price": "5.25"}]}


# ---- the example of SPEC 14 ------------------------------------------------------------------

@app.post("/carts/<cart_id:int>/items")
def add_item(request, cart_id, item: Item, dry_run: bool = False,
             limit: Annotated[int, Param(ge=1, le=100)] = 10) -> Item:
    RECEIVED["/carts"] = {"cart_id": cart_id, "item": item, "dry_run": dry_run, "limit": limit}
    return dataclasses.replace(item, name=f"{item.name} in cart {cart_id}",
                               qty=item.qty * (0 if dry_run else 1))


# ---- one handler per route type --------------------------------------------------------------
# The same parameters on each: a constrained int, a date, an Enum and an optional JSON body.

def _describe(n, day, color, order):
    return {"n": n, "n_type": type(n).__name__, "day": day, "day_type": type(day).__name__,
            "color": color, "color_type": type(color).__name__,
            "order": order, "order_type": type(order).__name__,
            "pid": os.getpid(), "is_pool": proc_env.proc_type == ProcessType.pool}


@app.post("/types/sync")
def typed_sync(request, n: Annotated[int, Param(ge=1, le=100)], day: date,
               color: Color = Color.red, order: Order | None = None):
    RECEIVED["/types/sync"] = {"n": n, "day": day, "color": color, "order": order}
    return _describe(n, day, color, order)


@app.post("/types/async")
async def typed_async(request, n: Annotated[int, Param(ge=1, le=100)], day: date,
                      color: Color = Color.red, order: Order | None = None):
    RECEIVED["/types/async"] = {"n": n, "day": day, "color": color, "order": order}
    return _describe(n, day, color, order)


@app.post("/types/thread", route_type=RouteType.thread)
def typed_thread(request, n: Annotated[int, Param(ge=1, le=100)], day: date,
                 color: Color = Color.red, order: Order | None = None):
    RECEIVED["/types/thread"] = {"n": n, "day": day, "color": color, "order": order}
    return _describe(n, day, color, order)


def counted(handler):
    """Leave a marker file in the query's ``dir`` for every call, whatever the arguments."""
    @functools.wraps(handler)
    def wrapper(request, *args, **kwargs):
        directory = request.query.get("dir")
        if directory:
            open(os.path.join(directory, f"call-{os.getpid()}-{uuid.uuid4().hex}"), "w").close()
        return handler(request, *args, **kwargs)
    return wrapper


@app.post("/types/pool", route_type=RouteType.pool)
@counted
def typed_pool(request, n: Annotated[int, Param(ge=1, le=100)], day: date,
               color: Color = Color.red, order: Order | None = None):
    return _describe(n, day, color, order)


# ---- files, bodies, returns ------------------------------------------------------------------

@app.post("/upload")
def upload(request, document: FileUpload, attachments: list[FileUpload] | None = None,
           title: str = ""):
    RECEIVED["/upload"] = {"document": document, "attachments": attachments, "title": title}
    return {"title": title, "document": [document.filename, document.read().decode()],
            "attachments": [[each.filename, each.read().decode()]
                            for each in attachments or ()]}


@app.post("/order")
def take_order(request, order: Order):
    RECEIVED["/order"] = {"order": order}
    return order


@app.post("/address")
def take_address(request, address: Address):
    RECEIVED["/address"] = {"address": address}
    return address


@app.post("/signup")
def signup(request, signup: Signup):
    RECEIVED["/signup"] = {"signup": signup}
    return signup


@app.get("/receipt")
def receipt(request):
    return RECEIPT


@app.get("/receipts")
def receipts(request):
    return [RECEIPT, RECEIPT]


@app.get("/receipts/by-id")
def receipts_by_id(request):
    return {"first": RECEIPT}


@app.get("/mixed")
def mixed(request):
    """A plain dict (no dataclass) holding every type JSON writes as a string."""
    return {"id": RECEIPT.id, "day": RECEIPT.day, "at": RECEIPT.at, "total": RECEIPT.total,
            "color": RECEIPT.color}


@app.get("/price")
def price(request):
    """A plain dict of Decimals: nothing the JSON writer would refuse."""
    return {"total": Decimal("10.50"), "prices": [Decimal("5.25"), Decimal("0.10")]}


@app.get("/untyped/<name>")
def untyped(request, name):
    return {"name": name, "type": type(name).__name__}
