"""BlackSheep, served by uvicorn (--loop uvloop --http httptools, see run.py)."""
from blacksheep import Application, json, text

from common import JSON_BODY, PLAINTEXT

app = Application()


@app.router.get("/")
async def plaintext():
    return text(PLAINTEXT)


@app.router.get("/json")
async def json_endpoint():
    return json(JSON_BODY)


@app.router.get("/user/{id}")
async def user(id: int):
    return json({"id": id})
