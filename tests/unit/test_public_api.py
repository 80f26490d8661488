"""The public API does not move: every public name of every public module stays importable.

``public_api.json`` lists, per module, the names that module offered before the
package layout changed (its ``__all__`` and the public names its own source defined).
A restructuring may move code; it may not take one of these names away.  A name that
is retired on purpose is removed from the file in the same change, with a changelog entry.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

PUBLIC_API: dict[str, list[str]] = json.loads(
    (Path(__file__).with_name("public_api.json")).read_text(encoding="utf-8")
)


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_public_names_stay_importable(module: str) -> None:
    """``from <module> import <name>`` works for every listed name."""
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC_API[module] if not hasattr(imported, name)]
    assert missing == [], f"{module} lost public names: {missing}"


def test_the_listing_covers_the_documented_packages() -> None:
    """The listing names the packages the README documents, so the check cannot go empty."""
    for module in ("auditmw", "auditmw.sinks", "auditmw.identity", "auditmw.formats"):
        assert PUBLIC_API[module], module
    assert sum(map(len, PUBLIC_API.values())) > 250


def test_faces_hand_on_the_same_objects() -> None:
    """A public module that became a face hands on the very objects of the new home."""
    from auditmw import asgi, canonical, config, crypto, event, integrity, policy, types
    from auditmw.config import options
    from auditmw.core import canonical as core_canonical
    from auditmw.core import event as core_event
    from auditmw.core import policy as core_policy
    from auditmw.core import protocols
    from auditmw.http import asgi as http_asgi
    from auditmw.integrity import crypto as integrity_crypto
    from auditmw.integrity import options as integrity_options

    assert asgi.AuditMiddleware is http_asgi.AuditMiddleware
    assert canonical.dumps is core_canonical.dumps
    assert config.AuditConfig is options.AuditConfig
    assert crypto.Keyring is integrity_crypto.Keyring
    assert event.Exchange is core_event.Exchange
    assert integrity.IntegrityOptions is integrity_options.IntegrityOptions
    assert policy.Policy is core_policy.Policy
    assert types.Resolver is protocols.Resolver
