"""The typed endpoint (issue 17) in pixie_web, twice: with typed parameters (/typed) and
written by hand (/hand), answering the same thing. PIXIE_WEB_PURE chooses the build."""
import os
import sys
from dataclasses import dataclass
from typing import Annotated

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from pixie_web import App, HTTPError, Param  # noqa: E402


@dataclass
class Item:
    name: str
    qty: int
    price: float


app = App()


@app.post("/typed")
def typed(request, item: Item, limit: Annotated[int, Param(ge=1, le=100)] = 10,
          offset: int = 0, active: bool = True):
    return {"name": item.name, "total": item.qty * item.price, "limit": limit,
            "offset": offset, "active": active}


@app.post("/hand")
def hand(request):
    """What a careful handler does without typed parameters: the same checks, by hand."""
    query = request.query
    try:
        limit = int(query.get("limit", "10"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise HTTPError(422, "limit and offset are integers")
    if not 1 <= limit <= 100:
        raise HTTPError(422, "limit is between 1 and 100")
    active = query.get("active", "true").lower() in ("true", "1", "yes", "on")
    body = request.json
    if not isinstance(body, dict):
        raise HTTPError(422, "a JSON object is required")
    name, qty, price = body.get("name"), body.get("qty"), body.get("price")
    if not isinstance(name, str) or type(qty) is not int or type(price) not in (int, float):
        raise HTTPError(422, "name, qty and price are required")
    item = Item(name, qty, float(price))
    return {"name": item.name, "total": item.qty * item.price, "limit": limit,
            "offset": offset, "active": active}


if __name__ == "__main__":
    app.run(port=int(os.environ["BENCH_PORT"]), workers=0, access_log=False)
