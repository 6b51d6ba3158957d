"""manage.py import_battles FILE --campaign SLUG: import Chatbot Arena / MT-Bench pairwise votes as ratings."""

from __future__ import annotations

from annotation.importers import import_battles, parse_battles
from annotation.management.commands._importing import RatingsImportCommand


class Command(RatingsImportCommand):
    help = (
        "Import battles (JSON array or JSONL: model_a, model_b, winner in model_a / model_b / tie / tie (bothbad), "
        "optional judge, question_id, tstamp, conversation_a/b). The campaign is created when it does not exist. "
        "Atomic: a file with any bad line writes nothing."
    )
    parse = staticmethod(parse_battles)
    write_import = staticmethod(import_battles)
