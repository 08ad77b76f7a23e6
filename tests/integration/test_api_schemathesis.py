"""Property-based: schemathesis generates requests from the served /openapi.json and checks every
response with its default checks (no 5xx, documented status codes and content types, bodies
that match the schema, auth not ignored, invalid data rejected).

The core answers 400 to some schema-valid input the document cannot express (a domain with
'/' or control characters, a crawl of more than 1000 subtasks, a blank reason): 400 is declared
on those operations and added to what `positive_data_acceptance` accepts.

One test per operation and generation mode, bounded to MAX_EXAMPLES examples each, so the whole
API suite stays well under 90 s. The operations are listed at collection time from the app built
in-process (no server needed); each test then loads the document the server actually serves.

Every POST and DELETE must say `Content-Type: application/json`, an empty body included (the API refuses
what a cross-site form could send, 415). The document cannot say so for an absent optional body,
so a generated POST without a body is sent with that header, as the API's clients send it.

(schemathesis.pytest.from_fixture does not work with pytest 9.2: it sets `Function._nodeid`,
which pytest 9 no longer has; `as_strategy` with Hypothesis' own `@given` is the documented
alternative.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from influencers.api.app import create_app
from influencers.core.config import Config

MAX_EXAMPLES = 25
CONFIG = schemathesis.Config.from_dict({
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}},
})
DOCUMENT = create_app(Config.from_env({})).openapi()
OPERATIONS = [(method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods]
#: Operations with parameters or a body: the others have no invalid request to generate.
TAKES_INPUT = {(method.upper(), path) for path, methods in DOCUMENT["paths"].items()
               for method, spec in methods.items() if spec.get("parameters") or spec.get("requestBody")}


@pytest.fixture(scope="module", autouse=True)
def hypothesis_home(tmp_path_factory):
    """Hypothesis keeps caches (``unicode_data``, ``constants``) in ./.hypothesis by default;
    tests write nothing outside their temporary directories."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture
def served_schema(api_server, small_run):
    """The served document, against a database holding a small crawl and export."""
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json", config=CONFIG, timeout=10)
    assert schema.raw_schema == DOCUMENT
    return schema


#: Positive data for every operation; negative data where there is a parameter or body to spoil.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if (m, p) in TAKES_INPUT
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p}-{mode.value}" for m, p, mode in CASES])
def test_operation_conforms_to_the_document(served_schema, api_server, method, path, mode):
    operation = served_schema[path][method]
    auth = {"Authorization": f"Bearer {api_server.token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case):
        bodiless_post = case.method.upper() in ("POST", "DELETE") and isinstance(case.body, NotSet)
        headers = {**auth, "Content-Type": "application/json"} if bodiless_post else auth
        case.call_and_validate(headers=headers, timeout=30)

    check()


def test_no_server_error_was_logged(api_server):
    """After the generated requests: nothing reached the last-resort handler, no 5xx was served."""
    log = api_server.log()
    assert "unhandled error" not in log
    assert "Traceback" not in log
    assert '" 50' not in log
