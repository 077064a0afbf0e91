"""ECS container definitions: privilege, users, kernel capabilities, logs, secrets, images, health.

Every check here reports per task definition (the resource Security Hub and AWS Config evaluate)
and names the offending containers in its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from itertools import pairwise

from ecsguard.posture.check import Result, check
from ecsguard.posture.context import CheckContext, Resource

TD = "AWS::ECS::TaskDefinition"
NEEDS_TD = ("ecs:ListTaskDefinitions", "ecs:DescribeTaskDefinition")


def is_windows(td: Resource) -> bool:
    family = (td.get("runtimePlatform") or {}).get("operatingSystemFamily") or ""
    return str(family).upper().startswith("WINDOWS")


def runs_as_root(container: Resource) -> bool:
    """`user` unset, or naming root by name or uid: root, 0, 0:0, 0:<gid>, root:<group>."""
    name = str(container.get("user") or "").split(":", 1)[0].strip()
    return name in ("", "root") or (name.isdigit() and int(name) == 0)


def _say(ctx: CheckContext, en: str, ja: str) -> str:
    """A short evidence fragment in the report language."""
    return ja if ctx.lang == "ja" else en


def _per_task_definition(
    ctx: CheckContext,
    evidence: Callable[[str, Resource, Resource], str | None],
    applies: Callable[[Resource], bool] = lambda td: True,
    sep: str = ", ",
) -> Iterator[Result]:
    """One Result per applicable task definition; `evidence(region, td, container)` returns the
    text naming a failing container, or None when the container is fine."""
    for region, td in ctx.task_definitions():
        if not applies(td):
            continue
        bad = [
            text
            for c in td.get("containerDefinitions", [])
            if (text := evidence(region, td, c)) is not None
        ]
        yield Result(td["taskDefinitionArn"], region, not bad, {"containers": sep.join(bad)})


@check(
    id="ecs.container_privileged",
    severity="high",
    pillar="security",
    resource_type=TD,
    controls=["FSBP:ECS.4"],
    needs=NEEDS_TD,
    title={
        "en": "ECS containers run without privileged mode",
        "ja": "ECS コンテナは特権モードなしで実行されている",
    },
    description={
        "en": "A privileged container has root on the host: every device, every kernel "
        "capability. An escape from it is an escape to the instance and its other tasks.",
        "ja": "特権コンテナはホストの root 権限（全デバイス、全カーネルケーパビリティ）を持つ。"
        "コンテナからの脱出はインスタンスと他のタスクへの侵入を意味する。",
    },
    remediation={
        "en": "Register a new revision with privileged false (or unset); grant only the "
        "specific linuxParameters.capabilities the workload needs.",
        "ja": "privileged を false（または未設定）にした新しいリビジョンを登録し、必要な "
        "linuxParameters.capabilities のみを付与する。",
    },
    fail={
        "en": "privileged containers: {containers}",
        "ja": "特権モードのコンテナ: {containers}",
    },
    passed={"en": "no container is privileged", "ja": "特権モードのコンテナはない"},
)
def container_privileged(ctx: CheckContext) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        bad = [c["name"] for c in td.get("containerDefinitions", []) if c.get("privileged")]
        yield Result(td["taskDefinitionArn"], region, not bad, {"containers": ", ".join(bad)})


# --- users ---------------------------------------------------------------------------------------


@check(
    id="ecs.container_root_user",
    severity="medium",
    pillar="security",
    resource_type=TD,
    controls=["SecurityHub:ECS.20"],
    needs=NEEDS_TD,
    title={
        "en": "Linux containers run as a non-root user",
        "ja": "Linux コンテナは root 以外のユーザーで実行されている",
    },
    description={
        "en": "Without a `user`, a container runs as the image's user, which is root for most "
        "images. Root inside the container makes a kernel or runtime escape far more "
        "damaging and lets a compromised process rewrite the container's own files. Any form "
        "naming uid 0 counts: root, 0, 0:0, 0:<gid>, root:<group>.",
        "ja": "`user` を指定しないと、コンテナはイメージ既定のユーザー（多くの場合 root）で動く。"
        "コンテナ内の root はカーネルやランタイムからの脱出時の被害を大きくし、侵害された"
        "プロセスがコンテナ内のファイルを書き換えることも許す。root、0、0:0、0:<gid>、"
        "root:<group> など uid 0 を指す形式はすべて該当する。",
    },
    remediation={
        "en": "Create an unprivileged user in the image (USER in the Dockerfile) and set `user` "
        'to its uid (e.g. "1000" or "1000:1000") in a new task definition revision.',
        "ja": "イメージに非特権ユーザーを作成し（Dockerfile の USER）、新しいタスク定義"
        'リビジョンで `user` にその uid（例: "1000"、"1000:1000"）を指定する。',
    },
    fail={
        "en": "containers running as root: {containers}",
        "ja": "root で実行されるコンテナ: {containers}",
    },
    passed={
        "en": "every container sets a non-root user",
        "ja": "すべてのコンテナが root 以外のユーザーを指定している",
    },
)
def container_root_user(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        if not runs_as_root(c):
            return None
        user = c.get("user") or _say(ctx, "unset", "未設定")
        return f"{c['name']} (user {user})"

    yield from _per_task_definition(ctx, evidence, applies=lambda td: not is_windows(td))


_WINDOWS_ADMINS = {"containeradministrator", "administrator", "system", "localsystem"}


@check(
    id="ecs.container_windows_admin_user",
    severity="medium",
    pillar="security",
    resource_type=TD,
    controls=["SecurityHub:ECS.21"],
    needs=NEEDS_TD,
    title={
        "en": "Windows containers run as a non-administrator user",
        "ja": "Windows コンテナは管理者以外のユーザーで実行されている",
    },
    description={
        "en": "Windows Server Core images run as ContainerAdministrator unless told otherwise. "
        "An administrator inside the container can change system settings and services and "
        "makes an escape to the host more likely and more damaging.",
        "ja": "Windows Server Core イメージは指定がなければ ContainerAdministrator で動く。"
        "コンテナ内の管理者はシステム設定やサービスを変更でき、ホストへの脱出の可能性と被害を"
        "大きくする。",
    },
    remediation={
        "en": "Set `user` to ContainerUser (or another non-administrator account present in "
        "the image) in a new task definition revision.",
        "ja": "新しいタスク定義リビジョンで `user` に ContainerUser（またはイメージ内の管理者以外の"
        "アカウント）を指定する。",
    },
    fail={
        "en": "Windows containers running as administrator: {containers}",
        "ja": "管理者で実行される Windows コンテナ: {containers}",
    },
    passed={
        "en": "every Windows container sets a non-administrator user",
        "ja": "すべての Windows コンテナが管理者以外のユーザーを指定している",
    },
)
def container_windows_admin_user(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        user = str(c.get("user") or "").strip()
        if not user:
            return f"{c['name']} (user {_say(ctx, 'unset', '未設定')})"
        account = user.rsplit("\\", 1)[-1].lower()
        return f"{c['name']} (user {user})" if account in _WINDOWS_ADMINS else None

    yield from _per_task_definition(ctx, evidence, applies=is_windows)


# --- file system and kernel ----------------------------------------------------------------------


@check(
    id="ecs.container_readonly_root_filesystem",
    severity="high",
    pillar="security",
    resource_type=TD,
    controls=["FSBP:ECS.5"],
    needs=NEEDS_TD,
    title={
        "en": "Linux containers have a read-only root file system",
        "ja": "Linux コンテナのルートファイルシステムは読み取り専用になっている",
    },
    description={
        "en": "A writable root file system lets an intruder drop tools, alter binaries and "
        "persist for the life of the task. With readonlyRootFilesystem the container can "
        "write only to the volumes it explicitly mounts. Windows containers do not support "
        "the setting and are not evaluated.",
        "ja": "ルートファイルシステムが書き込み可能だと、侵入者はツールの設置やバイナリの改ざんを"
        "行い、タスクが動く間居座ることができる。readonlyRootFilesystem を有効にすると、明示的に"
        "マウントしたボリュームにしか書き込めない。Windows コンテナはこの設定に対応しないため"
        "評価しない。",
    },
    remediation={
        "en": "Set readonlyRootFilesystem to true; mount a volume (or a tmpfs on EC2) for the "
        "paths the application must write, such as /tmp.",
        "ja": "readonlyRootFilesystem を true にし、/tmp などアプリケーションが書き込む必要のある"
        "パスにはボリューム（EC2 では tmpfs も可）をマウントする。",
    },
    fail={
        "en": "containers with a writable root file system: {containers}",
        "ja": "ルートファイルシステムが書き込み可能なコンテナ: {containers}",
    },
    passed={
        "en": "every container has a read-only root file system",
        "ja": "すべてのコンテナのルートファイルシステムが読み取り専用",
    },
)
def container_readonly_root_filesystem(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        return None if c.get("readonlyRootFilesystem") is True else c["name"]

    yield from _per_task_definition(ctx, evidence, applies=lambda td: not is_windows(td))


#: capabilities that open the kernel, the host network or other processes to the container
DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL",
        "AUDIT_CONTROL",
        "BPF",
        "DAC_READ_SEARCH",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "NET_ADMIN",
        "NET_RAW",
        "PERFMON",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_MODULE",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_TIME",
    }
)


@check(
    id="ecs.container_added_capabilities",
    severity="high",
    pillar="security",
    resource_type=TD,
    needs=NEEDS_TD,
    title={
        "en": "Containers add no dangerous Linux capabilities",
        "ja": "コンテナは危険な Linux ケーパビリティを追加していない",
    },
    description={
        "en": "Capabilities such as SYS_ADMIN, SYS_MODULE, SYS_PTRACE, NET_ADMIN, BPF or ALL "
        "give a container near-root power over the kernel, the host network or other "
        "processes: loading modules, mounting file systems, reading other processes' memory, "
        "sniffing or rerouting traffic. Each is a well-known container escape path.",
        "ja": "SYS_ADMIN、SYS_MODULE、SYS_PTRACE、NET_ADMIN、BPF、ALL などのケーパビリティは、"
        "カーネル、ホストのネットワーク、他のプロセスに対して root に近い権限を与える"
        "（モジュールのロード、ファイルシステムのマウント、他プロセスのメモリ読み取り、通信の"
        "盗聴や経路変更）。いずれもよく知られたコンテナ脱出の手段である。",
    },
    remediation={
        "en": "Remove these entries from linuxParameters.capabilities.add; if the workload "
        "truly needs one, isolate it on dedicated instances and document why.",
        "ja": "linuxParameters.capabilities.add からこれらを削除する。どうしても必要な場合は専用の"
        "インスタンスに隔離し、理由を記録する。",
    },
    fail={
        "en": "dangerous capabilities added: {containers}",
        "ja": "危険なケーパビリティを追加しているコンテナ: {containers}",
    },
    passed={
        "en": "no container adds a dangerous capability",
        "ja": "危険なケーパビリティを追加しているコンテナはない",
    },
)
def container_added_capabilities(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        caps = ((c.get("linuxParameters") or {}).get("capabilities") or {}).get("add") or []
        names = [str(cap).upper().removeprefix("CAP_") for cap in caps]
        bad = sorted({name for name in names if name in DANGEROUS_CAPABILITIES})
        return f"{c['name']} ({', '.join(bad)})" if bad else None

    yield from _per_task_definition(ctx, evidence, applies=lambda td: not is_windows(td))


# --- logs ----------------------------------------------------------------------------------------


@check(
    id="ecs.container_log_configuration",
    severity="high",
    pillar="logging",
    resource_type=TD,
    controls=["FSBP:ECS.9"],
    needs=NEEDS_TD,
    title={
        "en": "Every container has a log configuration",
        "ja": "すべてのコンテナにログ設定がある",
    },
    description={
        "en": "A container without logConfiguration writes stdout and stderr nowhere durable: "
        "on Fargate the output is lost, on EC2 it stays on the instance and disappears with "
        "it. Incidents in that container cannot be investigated afterwards.",
        "ja": "logConfiguration のないコンテナの標準出力と標準エラーは永続的な場所に残らない。"
        "Fargate では失われ、EC2 ではインスタンス上にしか残らずインスタンスと共に消える。"
        "そのコンテナで起きたインシデントを後から調査できない。",
    },
    remediation={
        "en": "Add a logConfiguration (awslogs to CloudWatch Logs, or awsfirelens) to every "
        "container definition and register a new revision.",
        "ja": "すべてのコンテナ定義に logConfiguration（CloudWatch Logs への awslogs、または "
        "awsfirelens）を追加し、新しいリビジョンを登録する。",
    },
    fail={
        "en": "containers without a log configuration: {containers}",
        "ja": "ログ設定のないコンテナ: {containers}",
    },
    passed={
        "en": "every container has a log configuration",
        "ja": "すべてのコンテナにログ設定がある",
    },
)
def container_log_configuration(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        return None if (c.get("logConfiguration") or {}).get("logDriver") else c["name"]

    yield from _per_task_definition(ctx, evidence)


def _account_log_mode(ctx: CheckContext, region: str) -> str | None:
    """The region's effective `defaultLogDriverMode` account setting, when the snapshot has it."""
    inventory = ctx.snapshot.regions.get(region)
    settings = inventory.ecs.account_settings if inventory else []
    modes = [s.get("value") for s in settings if s.get("name") == "defaultLogDriverMode"]
    return str(modes[0]).lower() if modes and modes[0] else None


@check(
    id="ecs.container_log_blocking_mode",
    severity="low",
    pillar="logging",
    resource_type=TD,
    needs=(*NEEDS_TD, "ecs:ListAccountSettings"),
    title={
        "en": "Container logs are delivered in non-blocking mode",
        "ja": "コンテナのログは non-blocking モードで送信されている",
    },
    description={
        "en": "In blocking mode a write to stdout or stderr waits until the log driver accepts "
        "it: when CloudWatch Logs (or the log router) is slow, throttled or unreachable the "
        "application stalls, fails its health checks and is replaced, and a missing log group "
        "stops the container from starting. Non-blocking mode buffers in memory "
        "(max-buffer-size) and drops lines only when the buffer is full. The effective mode is "
        "the container's `mode` option, else the region's defaultLogDriverMode account "
        "setting, else non-blocking (the ECS default since 25 June 2025; blocking before). "
        "Keep blocking only where losing a log line is worse than stopping the application, "
        "and say so.",
        "ja": "blocking モードでは標準出力・標準エラーへの書き込みはログドライバーが受け取るまで"
        "待つ。CloudWatch Logs（またはログルーター）が遅い、スロットリングされる、到達"
        "できない場合、アプリケーションは停止し、ヘルスチェックに失敗して置き換えられる。"
        "ロググループを作成できなければコンテナは起動しない。non-blocking モードはメモリ上の"
        "バッファ（max-buffer-size）に溜め、溢れた場合にのみ行を捨てる。実際のモードは"
        "コンテナの `mode` オプション、なければリージョンのアカウント設定 "
        "defaultLogDriverMode、それもなければ non-blocking（2025年6月25日以降の ECS の既定。"
        "それ以前は blocking）で決まる。ログの欠落がアプリケーション停止より重大な場合に限り、"
        "理由を明記して blocking を使う。",
    },
    remediation={
        "en": "Set the log option mode to non-blocking (with max-buffer-size, e.g. 25m) or "
        "remove an account-wide defaultLogDriverMode of blocking; mute this check for the "
        "workloads that must block, with the reason.",
        "ja": "ログオプション mode を non-blocking にする（max-buffer-size も指定、例: 25m）か、"
        "アカウント設定 defaultLogDriverMode の blocking を見直す。blocking が必要なワーク"
        "ロードは理由を添えてこのチェックをミュートする。",
    },
    fail={
        "en": "containers whose logging blocks the application: {containers}",
        "ja": "ログ送信がアプリケーションをブロックするコンテナ: {containers}",
    },
    passed={
        "en": "every log configuration is non-blocking",
        "ja": "すべてのログ設定が non-blocking",
    },
)
def container_log_blocking_mode(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        mode = ((c.get("logConfiguration") or {}).get("options") or {}).get("mode")
        if mode:
            return None if str(mode).lower() == "non-blocking" else f"{c['name']} (mode {mode})"
        if _account_log_mode(ctx, region) == "blocking":
            because = _say(
                ctx,
                "mode unset; account defaultLogDriverMode is blocking",
                "mode 未設定、アカウント設定 defaultLogDriverMode が blocking",
            )
            return f"{c['name']} ({because})"
        return None

    def logs(td: Resource) -> bool:
        return any(c.get("logConfiguration") for c in td.get("containerDefinitions", []))

    yield from _per_task_definition(ctx, evidence, applies=logs)


# --- secrets in plain environment variables ------------------------------------------------------

#: names Security Hub's ECS.8 looks for, plus the session token that travels with them
_SECRET_NAMES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ECS_ENGINE_AUTH_DATA",
}
#: a name word that is, or ends with, one of these marks a secret (DB_PASSWORD, AUTHTOKEN)
_SECRET_WORD_ENDINGS = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "TOKENS",
    "CREDENTIAL",
    "CREDENTIALS",
    "APIKEY",
    "PRIVATEKEY",
)
_SECRET_WORD_PAIRS = {("API", "KEY"), ("PRIVATE", "KEY")}
#: a last word like these means the variable points at or describes a secret (DB_PASSWORD_FILE,
#: API_TOKEN_URL, DB_SECRET_ARN, TOKEN_TTL) rather than holding it
_REFERENCE_WORDS = {
    "ARN", "URL", "URI", "ENDPOINT", "FILE", "PATH", "DIR", "NAME", "ID", "REGION", "HEADER",
    "TTL", "EXPIRY", "EXPIRES", "EXPIRATION", "LIFETIME", "DURATION", "SECONDS", "LENGTH",
    "SIZE", "LIMIT", "TYPE", "MODE", "FORMAT", "ALGORITHM", "ENABLED", "DISABLED", "HOST",
    "PORT", "PARAM", "PARAMETER", "VERSION", "TIMEOUT", "FIELD", "LOCATION", "AUDIENCE",
    "ISSUER", "SCOPE", "PROVIDER", "POLICY", "PREFIX",
}  # fmt: skip
_HARMLESS_VALUES = {"", "true", "false", "yes", "no", "on", "off", "none", "null", "0", "1"}

_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_SECRET_KEY = re.compile(r"[A-Za-z0-9/+]{40}")
_HEX_40 = re.compile(r"[0-9a-fA-F]{40}")
#: (English label, Japanese label, pattern) of credentials recognisable by their value
_VALUE_PATTERNS = (
    ("AWS access key ID", "AWS アクセスキー ID", _KEY_ID),
    ("private key", "秘密鍵", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    (
        "GitHub token",
        "GitHub トークン",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})"),
    ),
    ("GitLab token", "GitLab トークン", re.compile(r"\bglpat-[\w-]{20,}")),
    ("Slack token", "Slack トークン", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Slack webhook", "Slack Webhook", re.compile(r"hooks\.slack\.com/services/T\w+/B\w+/\w+")),
    ("JSON Web Token", "JSON Web Token", re.compile(r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]{10,}")),
    ("Stripe live key", "Stripe 本番キー", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}")),
    ("Google API key", "Google API キー", re.compile(r"\bAIza[\w-]{35}(?![\w-])")),
    ("npm token", "npm トークン", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    (
        "password in URL",
        "URL 内のパスワード",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@${][^/\s@]*@"),
    ),
)
_SECRET_KEY_LABEL = ("AWS secret access key", "AWS シークレットアクセスキー")


def _name_words(name: str) -> list[str]:
    """`dbPassword` / `DB_PASSWORD` / `db-password` -> ["DB", "PASSWORD"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if w]


def secret_by_name(name: str, value: str) -> bool:
    """Whether a variable's NAME says it holds a secret (and its value is not a reference)."""
    if name.upper() in _SECRET_NAMES:
        return True
    words = _name_words(name)
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    named = (
        any(w.endswith(_SECRET_WORD_ENDINGS) for w in words)
        or any(pair in _SECRET_WORD_PAIRS for pair in pairwise(words))
        or words[-1] == "PASS"
    )
    text = value.strip()
    reference = (
        text.lower() in _HARMLESS_VALUES
        or text.startswith("arn:")
        or re.fullmatch(r"/[\w./-]+", text) is not None  # a path to a mounted secret file
        or re.fullmatch(r"[a-z][a-z0-9+.-]*://[^@\s]+", text) is not None  # a URL, no userinfo
    )
    return named and not reference


def secret_by_value(value: str, key_id_nearby: bool) -> tuple[str, str] | None:
    """(English, Japanese) label of the credential a VALUE looks like, or None. Never returns
    the value itself."""
    for en, ja, pattern in _VALUE_PATTERNS:
        if pattern.search(value):
            return en, ja
    text = value.strip()
    if key_id_nearby and _SECRET_KEY.fullmatch(text) and not _HEX_40.fullmatch(text):
        return _SECRET_KEY_LABEL
    return None


def environment_secrets(container: Resource) -> list[tuple[str, tuple[str, str] | None]]:
    """(variable name, value label or None when the name gave it away) for each plain
    environment variable that carries a secret."""
    env = [
        (str(e.get("name", "")), str(e.get("value") or ""))
        for e in container.get("environment") or []
    ]
    key_id = any(_KEY_ID.search(value) for _, value in env)
    found: list[tuple[str, tuple[str, str] | None]] = []
    for name, value in env:
        kind = secret_by_value(value, key_id)
        if kind or secret_by_name(name, value):
            found.append((name, kind))
    return found


@check(
    id="ecs.container_env_secrets",
    severity="high",
    pillar="security",
    resource_type=TD,
    controls=["FSBP:ECS.8"],
    needs=NEEDS_TD,
    title={
        "en": "Secrets are not passed as plain environment variables",
        "ja": "シークレットを平文の環境変数で渡していない",
    },
    description={
        "en": "Values in `environment` are part of the task definition: anyone allowed "
        "ecs:DescribeTaskDefinition reads them, every revision keeps them forever, and they "
        "end up in deployment tools and logs. A variable fails when its name says it holds a "
        "secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ECS_ENGINE_AUTH_DATA, or a name with "
        "PASSWORD, SECRET, TOKEN, API_KEY, PRIVATE_KEY, CREDENTIAL…, unless it names a "
        "reference such as *_ARN, *_URL, *_FILE or holds an ARN) or when its value looks like "
        "a credential (AWS access keys, private keys, GitHub, GitLab or Slack tokens, JWTs, "
        "passwords in URLs). Findings name the variable, never its value.",
        "ja": "`environment` の値はタスク定義の一部であり、ecs:DescribeTaskDefinition を許可された"
        "誰もが読め、すべてのリビジョンに残り続け、デプロイツールやログにも流れる。変数名が"
        "シークレットを示す場合（AWS_ACCESS_KEY_ID、AWS_SECRET_ACCESS_KEY、ECS_ENGINE_AUTH_DATA、"
        "または PASSWORD、SECRET、TOKEN、API_KEY、PRIVATE_KEY、CREDENTIAL などを含む名前。ただし "
        "*_ARN、*_URL、*_FILE のような参照名や ARN の値は除く）、または値が認証情報に見える場合"
        "（AWS アクセスキー、秘密鍵、GitHub・GitLab・Slack のトークン、JWT、URL 内のパスワード）"
        "に失敗とする。結果には変数名のみを示し、値は表示しない。",
    },
    remediation={
        "en": "Store the value in Secrets Manager or an SSM SecureString parameter, reference "
        "it from the container's `secrets` (valueFrom), register a new revision and rotate "
        "the exposed credential: the old revisions still show it.",
        "ja": "値を Secrets Manager または SSM の SecureString パラメータに保存し、コンテナの "
        "`secrets`（valueFrom）から参照する新しいリビジョンを登録する。古いリビジョンには値が"
        "残るため、露出した認証情報はローテーションする。",
    },
    fail={
        "en": "secrets in plain environment variables: {containers}",
        "ja": "平文の環境変数にあるシークレット: {containers}",
    },
    passed={
        "en": "no plain environment variable carries a secret",
        "ja": "シークレットを含む平文の環境変数はない",
    },
)
def container_env_secrets(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        found = [
            f"{name} ({_say(ctx, 'name', '変数名')})"
            if kind is None
            else f"{name} ({_say(ctx, f'{kind[0]} in value', f'値: {kind[1]}')})"
            for name, kind in environment_secrets(c)
        ]
        return f"{c['name']}: {', '.join(found)}" if found else None

    yield from _per_task_definition(ctx, evidence, sep="; ")


# --- images --------------------------------------------------------------------------------------

_ECR_PRIVATE = re.compile(r"\d{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def parse_image(image: str) -> tuple[str, str, str, str]:
    """`registry/repo:tag@digest` -> (registry, repository, tag, digest); a missing part is "",
    except the registry, which is docker.io when the reference names none."""
    ref, _, digest = image.strip().partition("@")
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first.lower(), rest
    else:
        registry, path = "docker.io", ref
    repository, _, tag = path.partition(":")
    return registry, repository, tag, digest


def _registry_label(registry: str) -> str:
    return "Docker Hub" if registry in _DOCKER_HUB else registry


def _ecr_repositories(ctx: CheckContext) -> dict[tuple[str, str, str], Resource]:
    """(registry id, region, repository name) -> repository, over the snapshot's regions."""
    index: dict[tuple[str, str, str], Resource] = {}
    for region, inventory in ctx.regions():
        for repo in inventory.ecr.repositories:
            arn_account = str(repo.get("repositoryArn", "")).split(":")[4:5]
            registry = repo.get("registryId") or (arn_account[0] if arn_account else ctx.account)
            index[(registry, region, repo.get("repositoryName", ""))] = repo
    return index


def _tag_is_immutable(repo: Resource, tag: str) -> bool:
    setting = str(repo.get("imageTagMutability") or "MUTABLE").upper()
    filters = repo.get("imageTagMutabilityExclusionFilters") or []
    excluded = any(f.get("filter") and fnmatchcase(tag, f["filter"]) for f in filters)
    if setting == "IMMUTABLE_WITH_EXCLUSION":
        return not excluded
    if setting == "MUTABLE_WITH_EXCLUSION":
        return excluded
    return setting == "IMMUTABLE"


def _mutable_reason(
    ctx: CheckContext, image: str, repositories: dict[tuple[str, str, str], Resource]
) -> str | None:
    """Why `image` may change under the same reference, or None when it is pinned."""
    registry, repository, tag, digest = parse_image(image)
    if digest:
        return None
    if not tag:
        return _say(ctx, "no tag or digest, pulls latest", "タグもダイジェストもなく latest を取得")
    if tag == "latest":
        return _say(ctx, "tag latest", "latest タグ")
    if _ECR_PRIVATE.fullmatch(registry):
        account, region = registry.split(".")[0], registry.split(".")[3]
        repo = repositories.get((account, region, repository))
        if repo is None:
            return _say(
                ctx,
                f"ECR repository {repository} not in this audit, tag mutability unknown",
                f"ECR リポジトリ {repository} は監査対象外で、タグの変更可否が不明",
            )
        if _tag_is_immutable(repo, tag):
            return None
        setting = repo.get("imageTagMutability") or "MUTABLE"
        return _say(
            ctx,
            f"ECR repository {repository} lets tag {tag} be overwritten ({setting})",
            f"ECR リポジトリ {repository} ではタグ {tag} を上書きできる ({setting})",
        )
    label = _registry_label(registry)
    return _say(
        ctx,
        f"tags on {label} can be moved to another image",
        f"{label} のタグは別のイメージに付け替えられる",
    )


@check(
    id="ecs.container_image_mutable_tag",
    severity="medium",
    pillar="security",
    resource_type=TD,
    needs=(*NEEDS_TD, "ecr:DescribeRepositories"),
    title={
        "en": "Container images are pinned to a digest or an immutable tag",
        "ja": "コンテナイメージはダイジェストまたは不変タグで固定されている",
    },
    description={
        "en": "A tag that can be overwritten does not say which image runs. ECS resolves a "
        "service's tags to digests once per deployment (unless the container disables "
        "versionConsistency), so every new deployment, a rollback to an earlier revision "
        "included, and every standalone or scheduled task runs whatever the tag points to at "
        "that moment: whoever can push to the repository changes production without touching "
        "the task definition, and the revision no longer records what was tested. A "
        "`@sha256:` digest is always pinned; a tag other than latest is pinned only in an ECR "
        "repository whose tag mutability is IMMUTABLE (or IMMUTABLE_WITH_EXCLUSION when the "
        "tag matches no exclusion filter).",
        "ja": "上書き可能なタグは、どのイメージが動くかを示さない。ECS はサービスのタグを"
        "デプロイごとに一度だけダイジェストに解決する（コンテナが versionConsistency を無効に"
        "していない場合）。そのため、以前のリビジョンへのロールバックを含む新しいデプロイや、"
        "単独タスク・スケジュールタスクは、その時点でタグが指すイメージを動かす。リポジトリに "
        "push できる者はタスク定義を変えずに本番を変えられ、リビジョンはテストしたものを記録"
        "しなくなる。`@sha256:` ダイジェストは常に固定される。latest 以外のタグが固定される"
        "のは、タグの変更可否が IMMUTABLE（またはタグが除外フィルタに一致しない "
        "IMMUTABLE_WITH_EXCLUSION）の ECR リポジトリの場合に限る。",
    },
    remediation={
        "en": "Reference images by digest (image@sha256:…), or use unique version tags in an "
        "ECR repository with imageTagMutability IMMUTABLE, and register a new revision.",
        "ja": "イメージをダイジェスト（image@sha256:…）で参照するか、imageTagMutability が "
        "IMMUTABLE の ECR リポジトリで一意なバージョンタグを使い、新しいリビジョンを登録する。",
    },
    fail={
        "en": "images that can change under the same reference: {containers}",
        "ja": "同じ参照のまま中身が変わりうるイメージ: {containers}",
    },
    passed={
        "en": "every image is pinned to a digest or an immutable tag",
        "ja": "すべてのイメージがダイジェストまたは不変タグで固定されている",
    },
)
def container_image_mutable_tag(ctx: CheckContext) -> Iterator[Result]:
    repositories = _ecr_repositories(ctx)

    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        image = str(c.get("image", ""))
        reason = _mutable_reason(ctx, image, repositories)
        return f"{c['name']} ({image}: {reason})" if reason else None

    yield from _per_task_definition(ctx, evidence, sep="; ")


@check(
    id="ecs.container_image_outside_ecr",
    severity="low",
    pillar="security",
    resource_type=TD,
    needs=NEEDS_TD,
    title={
        "en": "Container images come from Amazon ECR or an authenticated registry",
        "ja": "コンテナイメージは Amazon ECR または認証付きのレジストリから取得している",
    },
    description={
        "en": "An image pulled anonymously from a public registry such as Docker Hub depends on "
        "that registry at every task start: Docker Hub's anonymous pull rate limits can stop "
        "tasks from launching during a scale-out or a deployment. It is also a supply-chain "
        "risk: the publisher, not you, decides what the tag contains, and ECR image scanning "
        "does not see it. Images in private ECR, ECR Public (public.ecr.aws) or pulled with "
        "repositoryCredentials pass.",
        "ja": "Docker Hub などの公開レジストリから匿名で取得するイメージは、タスク起動のたびにその"
        "レジストリに依存する。Docker Hub の匿名プルのレート制限により、スケールアウトや"
        "デプロイ中にタスクが起動できなくなることがある。サプライチェーン上のリスクでもあり、タグの中身を"
        "決めるのは自社ではなく公開者であり、ECR のイメージスキャンも届かない。プライベート ECR、"
        "ECR Public（public.ecr.aws）、または repositoryCredentials 付きの取得は合格とする。",
    },
    remediation={
        "en": "Copy the image into a private ECR repository, or configure an ECR pull-through "
        "cache rule for the upstream registry, and reference the ECR image.",
        "ja": "イメージをプライベート ECR リポジトリにコピーするか、上流レジストリ向けに ECR の"
        "プルスルーキャッシュルールを設定し、ECR 上のイメージを参照する。",
    },
    fail={
        "en": "images pulled anonymously from outside ECR: {containers}",
        "ja": "ECR 外から匿名で取得するイメージ: {containers}",
    },
    passed={
        "en": "every image comes from ECR or an authenticated registry",
        "ja": "すべてのイメージが ECR または認証付きのレジストリから取得されている",
    },
)
def container_image_outside_ecr(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        image = str(c.get("image", ""))
        registry = parse_image(image)[0]
        if _ECR_PRIVATE.fullmatch(registry) or registry == "public.ecr.aws":
            return None
        if (c.get("repositoryCredentials") or {}).get("credentialsParameter"):
            return None
        label = _registry_label(registry)
        return f"{c['name']} ({_say(ctx, f'{image} from {label}', f'{image}、{label} から取得')})"

    yield from _per_task_definition(ctx, evidence, sep="; ")


# --- health --------------------------------------------------------------------------------------


@check(
    id="ecs.container_health_check",
    severity="low",
    pillar="monitoring",
    resource_type=TD,
    needs=NEEDS_TD,
    title={
        "en": "Essential containers define a health check",
        "ja": "必須コンテナにヘルスチェックが定義されている",
    },
    description={
        "en": "Without a container healthCheck, ECS considers an essential container healthy "
        "as long as its process runs: a hung or deadlocked application keeps its task, "
        "deployments cannot tell a broken revision from a working one, and dependsOn "
        "HEALTHY conditions cannot be used. Containers are essential unless `essential` is "
        "false.",
        "ja": "コンテナの healthCheck がないと、ECS はプロセスが動いている限り必須コンテナを正常と"
        "みなす。ハングやデッドロックしたアプリケーションのタスクは置き換えられず、デプロイは"
        "壊れたリビジョンを見分けられず、dependsOn の HEALTHY 条件も使えない。`essential` が "
        "false でない限りコンテナは必須である。",
    },
    remediation={
        "en": "Add a healthCheck (for example CMD-SHELL with a request to the application's "
        "health endpoint, with interval, timeout, retries and startPeriod) to each essential "
        "container.",
        "ja": "各必須コンテナに healthCheck を追加する（例: アプリケーションのヘルスエンドポイント"
        "にリクエストする CMD-SHELL。interval、timeout、retries、startPeriod も指定する）。",
    },
    fail={
        "en": "essential containers without a health check: {containers}",
        "ja": "ヘルスチェックのない必須コンテナ: {containers}",
    },
    passed={
        "en": "every essential container has a health check",
        "ja": "すべての必須コンテナにヘルスチェックがある",
    },
)
def container_health_check(ctx: CheckContext) -> Iterator[Result]:
    def evidence(region: str, td: Resource, c: Resource) -> str | None:
        essential = c.get("essential", True) is not False
        return c["name"] if essential and not (c.get("healthCheck") or {}).get("command") else None

    yield from _per_task_definition(ctx, evidence)
