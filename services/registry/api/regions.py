"""/api/v1/regions: the official Kemendagri region table, read-only for any signed-in role."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from services.registry.identity import IdentityError, parse_region_code
from services.registry.inputs import NormalizedString
from services.registry.models import Region
from services.registry.regions import LEVELS, list_regions, region_table_loaded
from shared.api import Blueprint
from shared.errors import InvalidInput, NotFound
from shared.http import current_context
from shared.pagination import PageArgs, page_of, paginate
from shared.shapes import Output
from shared.tokens import READERS
from shared.validation import Choice

REGION_CODE = r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$"
DOTTED_REGION_CODE = r"^[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?$"

blp = Blueprint(
    "regions",
    __name__,
    url_prefix="/api/v1/regions",
    description="Kemendagri regions: provinces, regencies and cities, districts and villages.",
)


class RegionSchema(Output):
    code = ma.fields.String(
        dump_only=True,
        metadata={"description": "plain digits: 6472011001", "pattern": REGION_CODE},
    )
    dotted = ma.fields.Function(
        lambda region: parse_region_code(region.code).dotted,
        dump_only=True,
        metadata={
            "type": "string",
            "description": "the printed form: 64.72.01.1001",
            "pattern": DOTTED_REGION_CODE,
        },
    )
    name = ma.fields.String(dump_only=True)
    level = Choice("RegionLevel", LEVELS, dump_only=True)
    parent_code = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"pattern": REGION_CODE}
    )


class RegionQuerySchema(PageArgs):
    parent = NormalizedString(
        lambda value: parse_region_code(value, field="parent").code,
        metadata={
            "description": "dotted or plain code whose direct children to list; "
            "omit it for the provinces"
        },
    )


@blp.route("")
class Regions(MethodView):
    @blp.arguments(RegionQuerySchema, location="query")
    @blp.response(200, page_of(RegionSchema))
    @blp.operation("list_regions", roles=READERS, problems=[404])
    def get(self, args):
        """List the provinces, or the direct children of `parent`, in code order."""
        session = current_context().db.session
        parent = args.get("parent")
        page = paginate(session, list_regions(parent), args["page"], args["page_size"])
        # No children is an answer for a known region (a village), and for an unloaded table.
        if (
            parent is not None
            and page["total"] == 0
            and session.get(Region, parent) is None
            and region_table_loaded(session)
        ):
            raise NotFound(f"No region {parse_region_code(parent).dotted} in the region table.")
        return page


@blp.route("/<code>")
class RegionByCode(MethodView):
    @blp.response(200, RegionSchema)
    @blp.operation("get_region", roles=READERS, problems=[422])
    def get(self, code: str):
        """Read one region by its dotted or plain code."""
        try:
            region_code = parse_region_code(code, field="code")
        except IdentityError as exc:
            raise InvalidInput.field("code", exc.message) from exc
        session = current_context().db.session
        region = session.get(Region, region_code.code)
        if region is not None:
            return region
        if not region_table_loaded(session):
            raise NotFound("The region table is not loaded.")
        raise NotFound(f"No region {region_code.dotted} in the region table.")
