"""One pagination helper: page/page_size in, items with the total out."""

from __future__ import annotations

import marshmallow as ma
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from shared.validation import Schema

MAX_PAGE_SIZE = 100


class PageArgs(Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(
        load_default=20, validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE)
    )


_pages: dict[type, type] = {}


def page_of(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The response schema of a page of `item_schema` items."""
    if item_schema not in _pages:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _pages[item_schema] = type(
            name,
            (ma.Schema,),
            {
                "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
                "page": ma.fields.Integer(required=True),
                "page_size": ma.fields.Integer(required=True),
                "total": ma.fields.Integer(required=True),
            },
        )
    return _pages[item_schema]


def paginate(session: Session, statement: Select, page: int, page_size: int) -> dict:
    """Run `statement` for one page and count every matching row."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    items = session.scalars(statement.limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": items, "page": page, "page_size": page_size, "total": total}
