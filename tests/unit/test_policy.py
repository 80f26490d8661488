"""Rule matching, levels, the floor and provenance of :class:`auditmw.policy.Policy`."""

from __future__ import annotations

from typing import Any

import pytest

from auditmw.event import Actor, AuthInfo, Exchange, Headers
from auditmw.exceptions import ConfigurationError, PolicyError
from auditmw.policy import Decision, Policy


def exchange(
    method: str = "GET",
    path: str = "/",
    *,
    route: str | None = None,
    status: int | None = 200,
    exception: BaseException | None = None,
    aborted: bool = False,
) -> Exchange:
    return Exchange(
        event_id="e",
        kind="http",
        method=method,
        path=path,
        headers=Headers(mapping={}),
        start_ns=0,
        start_mono=0,
        route=route,
        status=status,
        exception=exception,
        aborted=aborted,
    )


ADA = Actor(id="ada", type="user", roles=("admin", "ops"), auth=AuthInfo("jwt", verified=True))
BOT = Actor(id="svc-1", type="service", auth=AuthInfo("api_key", verified=True))


def rule_of(rules: list[dict[str, Any]], ex: Exchange, actor: Actor | None = None) -> str:
    return Policy({"rules": rules}).decide(ex, actor).rule


class TestMatching:
    """First match wins; selectors AND; list values OR."""

    @pytest.mark.parametrize(
        ("rules", "ex", "actor", "expected"),
        [
            pytest.param(
                [{"id": "a", "level": "none", "methods": ["GET"]}, {"id": "b", "level": "request"}],
                exchange("GET"), None, "a", id="first-match-wins",
            ),
            pytest.param(
                [{"id": "a", "level": "none", "methods": ["GET"]}, {"id": "b", "level": "request"}],
                exchange("POST"), None, "b", id="falls-through",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "methods": ["PUT", "POST"]}],
                exchange("POST"), None, "a", id="list-values-or",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "methods": ["POST"], "paths": ["/x"]}],
                exchange("POST", "/y"), None, "default", id="selectors-and",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "routes": ["/orders/{order_id}"]}],
                exchange("GET", "/orders/1", route="/orders/{order_id}"), None, "a", id="route",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "routes": ["/orders/{order_id}"]}],
                exchange("GET", "/orders/1"), None, "default", id="route-unknown",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/orders/*"]}],
                exchange("GET", "/orders/1"), None, "a", id="glob-star-one-segment",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/orders/*"]}],
                exchange("GET", "/orders/1/items"), None, "default", id="glob-star-not-two",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/orders/**"]}],
                exchange("GET", "/orders/1/items/2"), None, "a", id="glob-double-star-subtree",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/orders/**"]}],
                exchange("GET", "/orders"), None, "a", id="glob-double-star-root",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/orders/**"]}],
                exchange("GET", "/ordersX"), None, "default", id="glob-no-prefix-leak",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/files/*.pdf"]}],
                exchange("GET", "/files/a.pdf"), None, "a", id="glob-star-in-segment",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/**/export"]}],
                exchange("GET", "/a/b/export"), None, "a", id="glob-leading-double-star",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "paths": ["/a.b"]}],
                exchange("GET", "/aXb"), None, "default", id="glob-dot-is-literal",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "actors": ["ada"]}],
                exchange(), ADA, "a", id="actor",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "roles": ["auditor", "admin"]}],
                exchange(), ADA, "a", id="roles-any",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "roles": ["auditor"]}],
                exchange(), ADA, "default", id="roles-none",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "actor_types": ["service"]}],
                exchange(), BOT, "a", id="actor-type",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "auth_methods": ["jwt"]}],
                exchange(), BOT, "default", id="auth-method",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "actor_types": ["anonymous"]}],
                exchange(), None, "a", id="no-actor-is-anonymous",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "status": ["5xx"]}],
                exchange(status=503), None, "a", id="status-class",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "status": ["400-404", 418]}],
                exchange(status=418), None, "a", id="status-code",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "status": ["400-404"]}],
                exchange(status=405), None, "default", id="status-range-bounds",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "status": ["5xx"]}],
                exchange(status=None), None, "default", id="status-unknown",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "outcomes": ["error"]}],
                exchange(status=None, exception=ValueError()), None, "a", id="outcome-exception",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "outcomes": ["aborted"]}],
                exchange(aborted=True), None, "a", id="outcome-aborted",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "outcomes": ["failure"]}],
                exchange(status=404), None, "a", id="outcome-failure",
            ),
            pytest.param(
                [{"level": "request", "methods": ["GET"]}],
                exchange(), None, "rules[0]", id="rule-without-id",
            ),
            pytest.param(
                [{"id": "a", "level": "request", "methods": ["DELETE"]}],
                exchange("PROPFIND"), None, "default", id="unknown-method",
            ),
            pytest.param(
                [{"id": "a", "level": "request"}],
                exchange("PROPFIND"), None, "a", id="unknown-method-any-rule",
            ),
        ],
    )  # fmt: skip
    def test_rule(
        self, rules: list[dict[str, Any]], ex: Exchange, actor: Actor | None, expected: str
    ) -> None:
        """The expected rule matches."""
        assert rule_of(rules, ex, actor) == expected

    def test_order_kept_across_index_buckets(self) -> None:
        """A path rule listed before a general rule wins, though filed in another bucket."""
        rules: list[dict[str, Any]] = [
            {"id": "path", "level": "none", "paths": ["/a/**"], "methods": ["GET"]},
            {"id": "route", "level": "request", "routes": ["/a/{x}"]},
            {"id": "any", "level": "metadata"},
        ]
        assert rule_of(rules, exchange("GET", "/a/1", route="/a/{x}")) == "path"
        assert rule_of(rules, exchange("POST", "/a/1", route="/a/{x}")) == "route"
        assert rule_of(rules, exchange("POST", "/b")) == "any"

    def test_many_rules_last_matches(self) -> None:
        """With a thousand rules, the last one is still found by its route."""
        rules: list[dict[str, Any]] = [
            {"id": f"r{i}", "level": "request", "routes": [f"/r{i}"]} for i in range(1000)
        ]
        policy = Policy({"rules": rules})
        assert policy.decide(exchange(route="/r999")).rule == "r999"
        assert len(policy.index.candidates(exchange(route="/r999"))) == 1


class TestDecision:
    """A rule's decision carries its per-rule settings."""

    def test_default(self) -> None:
        """Without rules everything is recorded at metadata level by the default rule."""
        decision = Policy().decide(exchange())
        assert (decision.level, decision.rule) == ("metadata", "default")

    def test_default_level(self) -> None:
        """``default_level`` applies when no rule matches."""
        assert Policy({"default_level": "request"}).decide(exchange()).level == "request"

    def test_rule_settings(self) -> None:
        """Action, resource, body cap and headers come from the rule."""
        policy = Policy(
            {
                "headers": ["user-agent"],
                "rules": [
                    {
                        "id": "r",
                        "level": "request",
                        "action": "orders.refund",
                        "resource": {"type": "order", "id": "{order_id}"},
                        "max_body_bytes": 10,
                        "headers": ["X-Reason", "Authorization", "cookie"],
                    },
                    {"id": "s", "level": "metadata", "methods": ["POST"]},
                ],
            }
        )
        decision = policy.decide(exchange())
        assert decision.action == "orders.refund"
        assert (decision.resource_type, decision.resource_id) == ("order", "{order_id}")
        assert decision.max_body_bytes == 10
        assert decision.headers == ("x-reason",)
        assert policy.default_decision.headers == ("user-agent",)

    def test_redaction_headers_never_allowed(self) -> None:
        """Headers listed under ``redaction.headers`` are removed from every allow-list."""
        policy = Policy(
            {"headers": ["x-session", "accept"], "redaction": {"headers": ["X-Session"]}}
        )
        assert policy.default_decision.headers == ("accept",)

    def test_decision_is_shared(self) -> None:
        """Decisions are precomputed: deciding allocates nothing per request."""
        policy = Policy({"rules": [{"id": "r", "level": "request"}]})
        assert policy.decide(exchange()) is policy.decide(exchange("POST"))
        assert isinstance(policy.decide(exchange()), Decision)


class TestFloor:
    """No rule can lower the floor."""

    @pytest.mark.parametrize(
        "rule",
        [
            pytest.param({"status": [401]}, id="401"),
            pytest.param({"status": [401, 403]}, id="401-403"),
            pytest.param({"status": ["401-401"]}, id="range"),
            pytest.param({"outcomes": ["denied"]}, id="denied"),
            pytest.param({"status": [403], "methods": ["GET"]}, id="with-method"),
        ],
    )
    def test_rejected(self, rule: dict[str, Any]) -> None:
        """A ``none`` rule that can only match floor traffic is rejected at load."""
        with pytest.raises(PolicyError) as info:
            Policy({"rules": [{"id": "quiet", "level": "none", **rule}]})
        assert info.value.path == "/rules/0/level"
        assert "always recorded" in str(info.value)
        assert "'quiet'" in str(info.value)

    @pytest.mark.parametrize(
        "rule",
        [
            pytest.param({"status": ["4xx"]}, id="4xx"),
            pytest.param({"status": [401], "level": "metadata"}, id="not-none"),
            pytest.param({"outcomes": ["denied", "failure"]}, id="mixed"),
        ],
    )
    def test_accepted(self, rule: dict[str, Any]) -> None:
        """Rules that also match other traffic load; the pipeline keeps the floor at runtime."""
        Policy({"rules": [{"level": "none", **rule}]})


class TestBodyCapture:
    """``body_capture`` decides before the response, with pre-response selectors only."""

    @pytest.mark.parametrize(
        ("rules", "ex", "expected"),
        [
            pytest.param([], exchange(), ("metadata", 0), id="default"),
            pytest.param(
                [{"level": "request", "methods": ["POST"], "max_body_bytes": 5}],
                exchange("POST"), ("request", 5), id="rule",
            ),
            pytest.param(
                [{"level": "request_response", "status": ["5xx"], "max_body_bytes": 7},
                 {"level": "none"}],
                exchange(status=None), ("request_response", 7), id="conditional-counts",
            ),
            pytest.param(
                [{"level": "none", "methods": ["GET"]},
                 {"level": "request_response"}],
                exchange("GET"), ("none", 0), id="unconditional-stops",
            ),
            pytest.param(
                [{"level": "request", "routes": ["/a"], "max_body_bytes": 3},
                 {"level": "none"}],
                exchange(route=None), ("request", 3), id="route-unknown-counts",
            ),
            pytest.param(
                [{"level": "request", "routes": ["/a"], "max_body_bytes": 3},
                 {"level": "none"}],
                exchange(route="/b"), ("none", 0), id="route-known-other",
            ),
            pytest.param(
                [{"level": "request", "roles": ["admin"], "max_body_bytes": 3},
                 {"level": "request_response", "max_body_bytes": 9}],
                exchange(), ("request_response", 9), id="highest-level-and-cap",
            ),
        ],
    )  # fmt: skip
    def test_capture(
        self, rules: list[dict[str, Any]], ex: Exchange, expected: tuple[str, int]
    ) -> None:
        """The level is the highest any rule may reach; the cap the largest at body levels."""
        policy = Policy({"rules": rules})
        assert policy.body_capture(ex) == expected
        assert policy.capture_level(ex) == expected[0]

    @pytest.mark.parametrize(
        ("document", "expected"),
        [
            pytest.param({}, False, id="default"),
            pytest.param({"default_level": "request"}, True, id="default-level"),
            pytest.param({"rules": [{"level": "request_response"}]}, True, id="rule"),
        ],
    )
    def test_captures_bodies(self, document: dict[str, Any], expected: bool) -> None:
        """Shells skip capture entirely when no rule can record bodies."""
        assert Policy(document).captures_bodies is expected


class TestProvenance:
    """Hash, id and stamp."""

    def test_hash_stable_and_canonical(self) -> None:
        """The hash ignores key order and changes with any content."""
        a = Policy({"id": "p", "rules": [{"level": "request", "methods": ["GET"]}]})
        b = Policy({"rules": [{"methods": ["GET"], "level": "request"}], "id": "p"})
        c = Policy({"id": "p", "rules": [{"level": "request", "methods": ["POST"]}]})
        assert a.hash == b.hash != c.hash
        assert a.hash.startswith("sha256:")
        assert len(a.hash) == 71
        assert a.stamp == {"id": "p", "hash": a.hash}

    def test_id_default(self) -> None:
        """The id comes from the document, else the argument."""
        assert Policy(id="x").id == "x"
        assert Policy({"id": "y"}, id="x").id == "y"


class TestCoerce:
    """``Policy.coerce`` accepts every form a configuration may hold."""

    def test_forms(self, tmp_path: Any) -> None:
        """Policy, mapping, path, None."""
        policy = Policy()
        assert Policy.coerce(policy) is policy
        assert Policy.coerce(None).id == "default"
        assert Policy.coerce({"id": "m"}).id == "m"
        path = tmp_path / "p.json"
        path.write_text('{"id": "f"}')
        assert Policy.coerce(path).id == "f"
        assert Policy.coerce(str(path)).id == "f"

    def test_bad_type(self) -> None:
        """Anything else is a configuration error naming the setting."""
        with pytest.raises(ConfigurationError) as info:
            Policy.coerce(42)
        assert info.value.setting == "policy"


class TestPipeline:
    """The pipeline applies decisions: floor, identity-aware rules, redaction order."""

    @staticmethod
    def build(document: dict[str, Any], **config: Any) -> Any:
        from auditmw.config import AuditConfig
        from auditmw.pipeline import Pipeline

        return Pipeline(AuditConfig(service="s", policy=Policy(document), **config))

    def test_auth_failure_floor(self) -> None:
        """An authentication failure under a ``none`` rule is still recorded."""
        from auditmw.event import anonymous

        failed = self.build(
            {"rules": [{"id": "quiet", "level": "none"}]},
            identity=lambda request: anonymous("jwt", error="expired"),
        )
        event = failed.process(exchange())
        assert event is not None
        assert event["policy"]["rule"] == "quiet"
        assert self.build({"rules": [{"level": "none"}]}).process(exchange()) is None

    def test_rule_sees_resolved_actor(self) -> None:
        """Identity selectors see the actor resolved for this request."""
        pipeline = self.build(
            {"rules": [{"id": "admins", "roles": ["admin"], "level": "request"}]},
            identity=lambda request: ADA,
        )
        event = pipeline.process(exchange())
        assert event is not None
        assert event["policy"]["rule"] == "admins"

    def test_redaction_before_user_processors(self) -> None:
        """User processors receive the event already redacted."""
        seen: list[str] = []

        def spy(event: dict[str, Any]) -> dict[str, Any]:
            seen.append(event["source"]["ip"])
            return event

        pipeline = self.build({"redaction": {"client_ip": "truncate"}}, processors=[spy])
        ex = exchange()
        ex.client = ("203.0.113.9", 5555)
        pipeline.process(ex)
        assert seen == ["203.0.113.0"]
