"""The typed endpoint (issue 17) in FastAPI (Pydantic v2), served by uvicorn."""
from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel


class Item(BaseModel):
    name: str
    qty: int
    price: float


app = FastAPI()


@app.post("/typed")
async def typed(item: Item, limit: Annotated[int, Query(ge=1, le=100)] = 10, offset: int = 0,
          active: bool = True):
    return {"name": item.name, "total": item.qty * item.price, "limit": limit,
            "offset": offset, "active": active}
