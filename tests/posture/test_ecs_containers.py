"""Container checks: each with a pass, a fail naming its evidence, and a not-applicable case."""

from __future__ import annotations

from typing import Any

import pytest
from tests.posture.builders import ACCOUNT, REGION, findings, snapshot, task_definition

from ecsguard.aws.snapshot import Gap
from ecsguard.core.models import Finding, Status
from ecsguard.posture.checks.ecs_containers import (
    environment_secrets,
    parse_image,
    runs_as_root,
    secret_by_name,
)

WINDOWS = {"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}}
ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def only(check_id: str, *tds: dict[str, Any], lang: str = "en", **sections: Any) -> Finding:
    """The single finding of `check_id` over these task definitions."""
    snap = snapshot(ecs={"task_definitions": list(tds), **sections.pop("ecs", {})}, **sections)
    [finding] = findings(snap, check_id, lang)
    return finding


def none_for(check_id: str, *tds: dict[str, Any]) -> None:
    assert findings(snapshot(ecs={"task_definitions": list(tds)}), check_id) == []


def container(name: str, **fields: Any) -> dict[str, Any]:
    """A well-configured container (the builder's), renamed and overridden."""
    base = task_definition(name)["containerDefinitions"][0]
    return base | fields


# --- users -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "root"),
    [
        (None, True),
        ("", True),
        ("root", True),
        ("0", True),
        ("0:0", True),
        ("0:1000", True),
        ("root:wheel", True),
        ("000", True),
        ("1000", False),
        ("1000:0", False),
        ("app", False),
        ("nobody:nogroup", False),
    ],
)
def test_runs_as_root_reads_every_user_form(user: str | None, root: bool) -> None:
    assert runs_as_root({"user": user} if user is not None else {}) is root


def test_root_user_fails_with_container_and_user() -> None:
    td = task_definition(
        "api",
        containers=[container("app", user="0:0"), container("sidecar", user=None), container("ok")],
    )
    finding = only("ecs.container_root_user", td)
    assert finding.status == Status.FAIL
    assert finding.message == "containers running as root: app (user 0:0), sidecar (user unset)"
    assert finding.controls == ["SecurityHub:ECS.20"]
    assert (
        "root で実行されるコンテナ: app" in only("ecs.container_root_user", td, lang="ja").message
    )


def test_root_user_passes_and_skips_windows() -> None:
    assert only("ecs.container_root_user", task_definition()).status == Status.PASS
    none_for("ecs.container_root_user", task_definition(container={"user": None}, **WINDOWS))


@pytest.mark.parametrize(
    "user", [None, "ContainerAdministrator", "administrator", "NT AUTHORITY\\SYSTEM"]
)
def test_windows_admin_user_fails(user: str | None) -> None:
    td = task_definition("win", container={"user": user}, **WINDOWS)
    finding = only("ecs.container_windows_admin_user", td)
    assert finding.status == Status.FAIL
    assert finding.message.startswith("Windows containers running as administrator: win (user ")
    assert finding.controls == ["SecurityHub:ECS.21"]


def test_windows_admin_user_passes_and_skips_linux() -> None:
    td = task_definition("win", container={"user": "ContainerUser"}, **WINDOWS)
    assert only("ecs.container_windows_admin_user", td).status == Status.PASS
    none_for("ecs.container_windows_admin_user", task_definition(container={"user": "root"}))


# --- file system and kernel ------------------------------------------------------------------


def test_readonly_root_filesystem() -> None:
    bad = task_definition(
        "api", containers=[container("app", readonlyRootFilesystem=False), container("ok")]
    )
    finding = only("ecs.container_readonly_root_filesystem", bad)
    assert (finding.status, finding.message) == (
        Status.FAIL,
        "containers with a writable root file system: app",
    )
    unset = task_definition(container={"readonlyRootFilesystem": None})
    assert only("ecs.container_readonly_root_filesystem", unset).status == Status.FAIL
    assert only("ecs.container_readonly_root_filesystem", task_definition()).status == Status.PASS
    none_for("ecs.container_readonly_root_filesystem", task_definition(**WINDOWS))


def test_added_capabilities() -> None:
    caps = {"capabilities": {"add": ["CHOWN", "cap_sys_admin", "NET_ADMIN"], "drop": ["ALL"]}}
    bad = task_definition("api", container={"linuxParameters": caps})
    finding = only("ecs.container_added_capabilities", bad)
    assert finding.status == Status.FAIL
    assert finding.message == "dangerous capabilities added: api (NET_ADMIN, SYS_ADMIN)"
    harmless = {"capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE"]}}
    ok = task_definition("ok", container={"linuxParameters": harmless})
    assert only("ecs.container_added_capabilities", ok).status == Status.PASS
    none_for("ecs.container_added_capabilities", task_definition(**WINDOWS))


# --- logs ------------------------------------------------------------------------------------


def test_log_configuration() -> None:
    bad = task_definition(
        "api",
        containers=[
            container("app", logConfiguration=None),
            container("sidecar", logConfiguration={"logDriver": None}),
            container("ok"),
        ],
    )
    finding = only("ecs.container_log_configuration", bad)
    assert finding.status == Status.FAIL
    assert finding.message == "containers without a log configuration: app, sidecar"
    assert (finding.controls, finding.pillar) == (["FSBP:ECS.9"], "logging")
    assert only("ecs.container_log_configuration", task_definition()).status == Status.PASS
    none_for("ecs.container_log_configuration")


def awslogs(**options: str) -> dict[str, Any]:
    return {"logConfiguration": {"logDriver": "awslogs", "options": options}}


def test_log_blocking_mode_explicit_and_account_default() -> None:
    td = task_definition(
        "api",
        containers=[
            container("app", **awslogs(mode="blocking")),
            container("unset", **awslogs()),
            container("ok"),
        ],
    )
    setting = {"name": "defaultLogDriverMode", "value": "blocking"}
    finding = only("ecs.container_log_blocking_mode", td, ecs={"account_settings": [setting]})
    assert finding.status == Status.FAIL
    assert finding.message == (
        "containers whose logging blocks the application: app (mode blocking), "
        "unset (mode unset; account defaultLogDriverMode is blocking)"
    )


def test_log_blocking_mode_unset_follows_the_current_default() -> None:
    unset = task_definition(container=awslogs(**{"awslogs-group": "/ecs/web"}))
    assert only("ecs.container_log_blocking_mode", unset).status == Status.PASS
    setting = {"name": "defaultLogDriverMode", "value": "non-blocking"}
    finding = only("ecs.container_log_blocking_mode", unset, ecs={"account_settings": [setting]})
    assert finding.status == Status.PASS
    none_for(
        "ecs.container_log_blocking_mode", task_definition(container={"logConfiguration": None})
    )


def test_log_blocking_mode_is_not_assessed_without_account_settings() -> None:
    snap = snapshot(ecs={"task_definitions": [task_definition()]})
    snap.gaps.append(
        Gap(
            service="ecs",
            action="ListAccountSettings",
            region=REGION,
            error_code="AccessDeniedException",
        )
    )
    [finding] = findings(snap, "ecs.container_log_blocking_mode")
    assert finding.status == Status.NOT_ASSESSED


# --- secrets in environment variables --------------------------------------------------------

AKIA = "AKIAIOSFODNN7EXAMPLE"  # the documentation examples of AWS
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow..."
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("ECS_ENGINE_AUTH_DATA", "{}"),
        ("DB_PASSWORD", "hunter2"),
        ("dbPassword", "hunter2"),
        ("MYSQL_ROOT_PASSWORD", "12345"),
        ("SMTP_PASS", "x"),
        ("LDAP_PASSWD", "x"),
        ("CLIENT_SECRET", "x"),
        ("GITHUB_TOKEN", "x"),
        ("NPMTOKEN", "x"),
        ("STRIPE_API_KEY", "x"),
        ("SERVICE_APIKEY", "x"),
        ("JWT_PRIVATE_KEY", "x"),
        ("GOOGLE_APPLICATION_CREDENTIALS_JSON", "{}"),
    ],
)
def test_secret_names(name: str, value: str) -> None:
    assert secret_by_name(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_SECRET_ARN", "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:db"),
        ("DB_PASSWORD", "arn:aws:ssm:ap-northeast-1:123456789012:parameter/db"),
        ("OAUTH_TOKEN_URL", "https://auth.example.com/token"),
        ("DB_PASSWORD_FILE", "/run/secrets/db"),
        ("API_KEY_HEADER", "X-Api-Key"),
        ("SESSION_TOKEN_TTL", "3600"),
        ("SECRET_NAME", "prod/db"),
        ("ENABLE_TOKEN_AUTH", "true"),
        ("TOKENIZER_MODEL", "bert"),
        ("SECRETARY_EMAIL", "x@example.com"),
        ("PWD", "/app"),
        ("PASSWORD_MIN_LENGTH", "12"),
        ("JWKS_URI", "https://example.com/.well-known/jwks.json"),
        ("LOG_LEVEL", "info"),
    ],
)
def test_not_secret_names(name: str, value: str) -> None:
    assert not secret_by_name(name, value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (AKIA, "AWS access key ID"),
        (f"key={AKIA};", "AWS access key ID"),
        (PEM, "private key"),
        ("-----BEGIN PRIVATE KEY-----", "private key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ("ghp_" + "a1B2" * 9, "GitHub token"),
        ("github_pat_" + "A" * 30, "GitHub token"),
        ("glpat-" + "x" * 20, "GitLab token"),
        ("xoxb-1234567890-abcdefghij", "Slack token"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", "Slack webhook"),
        (JWT, "JSON Web Token"),
        ("sk_live_" + "a" * 24, "Stripe live key"),
        ("AIza" + "b" * 35, "Google API key"),
        ("postgres://app:s3cret@db.internal:5432/app", "password in URL"),
        ("redis://:s3cret@cache:6379", "password in URL"),
    ],
)
def test_secret_values(value: str, kind: str) -> None:
    [(name, labels)] = environment_secrets({"environment": [{"name": "SETTING", "value": value}]})
    assert (name, labels and labels[0]) == ("SETTING", kind)


@pytest.mark.parametrize(
    "value",
    [
        "postgres://db.internal:5432/app",
        "postgres://app:${DB_PASSWORD}@db.internal/app",
        "AKIA" + "Q" * 15,  # too short
        "a" * 40,  # 40 characters, but no key id beside it
        "https://example.com/",
        "",
    ],
)
def test_harmless_values(value: str) -> None:
    assert environment_secrets({"environment": [{"name": "SETTING", "value": value}]}) == []


def test_secret_access_key_is_recognised_next_to_a_key_id() -> None:
    env = [
        {"name": "S3_KEY", "value": AKIA},
        {"name": "S3_SIGNING", "value": SECRET_KEY},
        {"name": "GIT_COMMIT", "value": "0123456789abcdef0123456789abcdef01234567"},
    ]
    found = [(name, kind and kind[0]) for name, kind in environment_secrets({"environment": env})]
    assert found == [("S3_KEY", "AWS access key ID"), ("S3_SIGNING", "AWS secret access key")]


def test_env_secrets_names_container_and_variable_never_the_value() -> None:
    env = [
        {"name": "DB_PASSWORD", "value": "hunter2-very-secret"},
        {"name": "CONFIG", "value": f"id={AKIA}"},
        {"name": "DB_SECRET_ARN", "value": "arn:aws:secretsmanager:x"},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]
    td = task_definition("api", containers=[container("app", environment=env), container("ok")])
    en, ja = (only("ecs.container_env_secrets", td, lang=lang) for lang in ("en", "ja"))
    assert en.status == Status.FAIL
    assert en.message == (
        "secrets in plain environment variables: "
        "app: DB_PASSWORD (name), CONFIG (AWS access key ID in value)"
    )
    assert ja.message == (
        "平文の環境変数にあるシークレット: "
        "app: DB_PASSWORD (変数名), CONFIG (値: AWS アクセスキー ID)"
    )
    for message in (en.message, ja.message):
        assert "hunter2" not in message and AKIA not in message
    assert en.controls == ["FSBP:ECS.8"]


def test_env_secrets_passes_with_secrets_from_valuefrom_and_is_empty_without_tds() -> None:
    td = task_definition(
        container={
            "environment": [{"name": "LOG_LEVEL", "value": "info"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:x"}],
        }
    )
    assert only("ecs.container_env_secrets", td).status == Status.PASS
    none_for("ecs.container_env_secrets")


# --- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("nginx", ("docker.io", "nginx", "", "")),
        ("nginx:1.25", ("docker.io", "nginx", "1.25", "")),
        ("library/nginx:1.25", ("docker.io", "library/nginx", "1.25", "")),
        ("ghcr.io/org/app:v1", ("ghcr.io", "org/app", "v1", "")),
        ("localhost:5000/app", ("localhost:5000", "app", "", "")),
        (f"{ECR}/team/app:v1@sha256:abc", (ECR, "team/app", "v1", "sha256:abc")),
        ("public.ecr.aws/nginx/nginx:stable", ("public.ecr.aws", "nginx/nginx", "stable", "")),
    ],
)
def test_parse_image(image: str, parts: tuple[str, str, str, str]) -> None:
    assert parse_image(image) == parts


def repo(name: str, mutability: str, *exclusions: str) -> dict[str, Any]:
    return {
        "repositoryArn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}",
        "registryId": ACCOUNT,
        "repositoryName": name,
        "imageTagMutability": mutability,
        "imageTagMutabilityExclusionFilters": [
            {"filterType": "WILDCARD", "filter": f} for f in exclusions
        ],
    }


def test_image_mutable_tag_reasons() -> None:
    td = task_definition(
        "api",
        containers=[
            container("untagged", image="nginx"),
            container("latest", image=f"{ECR}/app:latest"),
            container("mutable", image=f"{ECR}/app:v1"),
            container("excluded", image=f"{ECR}/frozen:dev-7"),
            container("foreign", image=f"999999999999.dkr.ecr.{REGION}.amazonaws.com/app:v1"),
            container("hub", image="grafana/grafana:10.4.1"),
            container("pinned", image=f"{ECR}/frozen:v3"),
            container("digest", image="nginx@sha256:" + "b" * 64),
        ],
    )
    repos = [repo("app", "MUTABLE"), repo("frozen", "IMMUTABLE_WITH_EXCLUSION", "dev-*")]
    finding = only("ecs.container_image_mutable_tag", td, ecr={"repositories": repos})
    assert finding.status == Status.FAIL
    assert finding.message == (
        "images that can change under the same reference: "
        "untagged (nginx: no tag or digest, pulls latest); "
        f"latest ({ECR}/app:latest: tag latest); "
        f"mutable ({ECR}/app:v1: ECR repository app lets tag v1 be overwritten (MUTABLE)); "
        f"excluded ({ECR}/frozen:dev-7: ECR repository frozen lets tag dev-7 be overwritten "
        "(IMMUTABLE_WITH_EXCLUSION)); "
        f"foreign (999999999999.dkr.ecr.{REGION}.amazonaws.com/app:v1: ECR repository app not "
        "in this audit, tag mutability unknown); "
        "hub (grafana/grafana:10.4.1: tags on Docker Hub can be moved to another image)"
    )


def test_image_mutable_tag_passes_for_digests_and_immutable_repositories() -> None:
    td = task_definition(
        "api",
        containers=[
            container("immutable", image=f"{ECR}/app:v1.2.3"),
            container("kept", image=f"{ECR}/kept:release-1"),
            container("builder"),  # the builder pins by digest
        ],
    )
    repos = [repo("app", "IMMUTABLE"), repo("kept", "MUTABLE_WITH_EXCLUSION", "release-*")]
    finding = only("ecs.container_image_mutable_tag", td, ecr={"repositories": repos})
    assert finding.status == Status.PASS
    none_for("ecs.container_image_mutable_tag")


def test_image_mutable_tag_is_not_assessed_without_ecr() -> None:
    snap = snapshot(ecs={"task_definitions": [task_definition()]})
    snap.gaps.append(
        Gap(
            service="ecr",
            action="DescribeRepositories",
            region=REGION,
            error_code="AccessDeniedException",
        )
    )
    assert [f.status for f in findings(snap, "ecs.container_image_mutable_tag")] == [
        Status.NOT_ASSESSED
    ]


def test_image_outside_ecr() -> None:
    creds = {"credentialsParameter": "arn:aws:secretsmanager:x:secret:hub"}
    td = task_definition(
        "api",
        containers=[
            container("hub", image="nginx:1.25"),
            container("ghcr", image="ghcr.io/org/app:1"),
            container("authenticated", image="nginx:1.25", repositoryCredentials=creds),
            container("public", image="public.ecr.aws/nginx/nginx:1.25"),
            container("private"),
        ],
    )
    finding = only("ecs.container_image_outside_ecr", td)
    assert (finding.status, finding.severity) == (Status.FAIL, "low")
    assert finding.message == (
        "images pulled anonymously from outside ECR: "
        "hub (nginx:1.25 from Docker Hub); ghcr (ghcr.io/org/app:1 from ghcr.io)"
    )
    assert only("ecs.container_image_outside_ecr", task_definition()).status == Status.PASS
    none_for("ecs.container_image_outside_ecr")


# --- health ----------------------------------------------------------------------------------


def test_health_check_on_essential_containers() -> None:
    td = task_definition(
        "api",
        containers=[
            container("app", healthCheck=None),
            container("default-essential", healthCheck=None, essential=None),
            container("job", healthCheck=None, essential=False),
            container("ok"),
        ],
    )
    finding = only("ecs.container_health_check", td)
    assert finding.status == Status.FAIL
    assert finding.message == "essential containers without a health check: app, default-essential"
    assert only("ecs.container_health_check", task_definition()).status == Status.PASS
    none_for("ecs.container_health_check")


# --- the well-configured builder -------------------------------------------------------------

CONTAINER_CHECKS = [
    "ecs.container_privileged",
    "ecs.container_root_user",
    "ecs.container_readonly_root_filesystem",
    "ecs.container_added_capabilities",
    "ecs.container_log_configuration",
    "ecs.container_log_blocking_mode",
    "ecs.container_env_secrets",
    "ecs.container_image_mutable_tag",
    "ecs.container_image_outside_ecr",
    "ecs.container_health_check",
]


@pytest.mark.parametrize("check_id", CONTAINER_CHECKS)
def test_the_builder_task_definition_passes(check_id: str) -> None:
    assert only(check_id, task_definition()).status == Status.PASS


def test_evidence_fragments_are_in_the_report_language() -> None:
    root = task_definition("api", container={"user": None})
    assert only("ecs.container_root_user", root, lang="ja").message == (
        "root で実行されるコンテナ: api (user 未設定)"
    )
    hub = task_definition("api", container={"image": "nginx"})
    assert only("ecs.container_image_mutable_tag", hub, lang="ja").message == (
        "同じ参照のまま中身が変わりうるイメージ: "
        "api (nginx: タグもダイジェストもなく latest を取得)"
    )
    assert only("ecs.container_image_outside_ecr", hub, lang="ja").message == (
        "ECR 外から匿名で取得するイメージ: api (nginx、Docker Hub から取得)"
    )
    unset = task_definition("api", container=awslogs())
    setting = {"name": "defaultLogDriverMode", "value": "blocking"}
    finding = only(
        "ecs.container_log_blocking_mode", unset, lang="ja", ecs={"account_settings": [setting]}
    )
    assert finding.message == (
        "ログ送信がアプリケーションをブロックするコンテナ: "
        "api (mode 未設定、アカウント設定 defaultLogDriverMode が blocking)"
    )
