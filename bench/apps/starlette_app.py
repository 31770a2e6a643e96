"""Starlette, served by uvicorn (--loop uvloop --http httptools, see run.py)."""
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from common import JSON_BODY, PLAINTEXT


async def plaintext(request):
    return PlainTextResponse(PLAINTEXT)


async def json_endpoint(request):
    return JSONResponse(JSON_BODY)


async def user(request):
    return JSONResponse({"id": request.path_params["id"]})


app = Starlette(routes=[
    Route("/", plaintext),
    Route("/json", json_endpoint),
    Route("/user/{id:int}", user),
])
