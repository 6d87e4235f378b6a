"""A bare Litestar app with one hello route: the yardstick for bench/portal.py."""

from litestar import Litestar, MediaType, get


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def hello() -> str:
    return "<!doctype html><title>hello</title><p>hello</p>"


app = Litestar([hello])
