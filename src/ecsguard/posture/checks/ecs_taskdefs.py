"""ECS task definitions as a whole: host namespaces, EFS encryption, tags, role separation."""

from __future__ import annotations

from collections.abc import Iterator

from ecsguard.posture.check import Result, check
from ecsguard.posture.checks.ecs_containers import NEEDS_TD, TD, runs_as_root
from ecsguard.posture.context import CheckContext


def _host_mode(ctx: CheckContext, field: str) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        mode = td.get(field) or "unset"
        yield Result(td["taskDefinitionArn"], region, mode != "host", {"mode": mode})


@check(
    id="ecs.taskdef_host_network_mode",
    severity="medium",
    pillar="security",
    resource_type=TD,
    controls=["SecurityHub:ECS.17"],
    needs=NEEDS_TD,
    title={
        "en": "Task definitions do not use host network mode",
        "ja": "タスク定義はホストネットワークモードを使っていない",
    },
    description={
        "en": "In host network mode a container shares the instance's network stack: it can "
        "reach services bound to the host's loopback interface (including the ECS agent's "
        "introspection port), listen as the host, and is not covered by a task-level security "
        "group. Port remapping is impossible, so only one copy of the task fits on an instance.",
        "ja": "ホストネットワークモードでは、コンテナはインスタンスのネットワークスタックを共有"
        "する。ホストのループバックにバインドされたサービス（ECS エージェントの introspection"
        " ポートを含む）に到達でき、ホストとして待ち受けられ、タスク単位のセキュリティグループ"
        "も適用されない。ポートの再割り当てができないため、1 インスタンスに 1 タスクしか置けない。",
    },
    remediation={
        "en": "Register a revision with networkMode awsvpc (a network interface and security "
        "group per task) or bridge.",
        "ja": "networkMode を awsvpc（タスクごとのネットワークインターフェイスとセキュリティ"
        "グループ）または bridge にしたリビジョンを登録する。",
    },
    fail={"en": "networkMode is host", "ja": "networkMode が host"},
    passed={"en": "networkMode is {mode}", "ja": "networkMode は {mode}"},
)
def taskdef_host_network_mode(ctx: CheckContext) -> Iterator[Result]:
    yield from _host_mode(ctx, "networkMode")


@check(
    id="ecs.taskdef_host_network_root_user",
    severity="high",
    pillar="security",
    resource_type=TD,
    controls=["FSBP:ECS.1"],
    needs=NEEDS_TD,
    title={
        "en": "Host-network task definitions choose their containers' privileges explicitly",
        "ja": "ホストネットワークのタスク定義はコンテナの権限を明示的に選んでいる",
    },
    description={
        "en": "The rule of Security Hub's ECS.1 (retired by Security Hub in March 2026 in "
        "favour of ECS.4, ECS.17, ECS.20 and ECS.21, kept here for reports against older "
        "standards): a task definition in host network mode fails when one of its containers "
        "has privileged false or unset and user unset or root. Such a container holds root on "
        "the host's network stack without anyone having opted in to elevated privileges. Only "
        "task definitions in host network mode are evaluated.",
        "ja": "Security Hub の ECS.1 の規則（Security Hub は 2026年3月にこのコントロールを廃止し "
        "ECS.4、ECS.17、ECS.20、ECS.21 に置き換えたが、旧標準に対する報告のため残す）。"
        "ホストネットワークモードのタスク定義で、privileged が false または未設定かつ user が"
        "未設定または root のコンテナがあれば失敗とする。そのようなコンテナは、権限昇格を"
        "明示的に選んだ者がいないまま、ホストのネットワークスタック上で root を持つ。"
        "ホストネットワークモードのタスク定義のみを評価する。",
    },
    remediation={
        "en": "Set a non-root `user` on every container, or move the task to awsvpc or bridge "
        "network mode.",
        "ja": "すべてのコンテナに root 以外の `user` を指定するか、タスクを awsvpc または bridge "
        "ネットワークモードに移す。",
    },
    fail={
        "en": "host network mode with containers running as root: {containers}",
        "ja": "ホストネットワークモードで root として動くコンテナ: {containers}",
    },
    passed={
        "en": "host network mode, every container sets a non-root user or is explicitly privileged",
        "ja": "ホストネットワークモードだが、全コンテナが root 以外のユーザーを指定しているか"
        "明示的に特権を選んでいる",
    },
)
def taskdef_host_network_root_user(ctx: CheckContext) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        if td.get("networkMode") != "host":
            continue
        bad = [
            c["name"]
            for c in td.get("containerDefinitions", [])
            if not c.get("privileged") and runs_as_root(c)
        ]
        yield Result(td["taskDefinitionArn"], region, not bad, {"containers": ", ".join(bad)})


@check(
    id="ecs.taskdef_host_pid_mode",
    severity="high",
    pillar="security",
    resource_type=TD,
    controls=["FSBP:ECS.3"],
    needs=NEEDS_TD,
    title={
        "en": "Task definitions do not share the host's process namespace",
        "ja": "タスク定義はホストのプロセス名前空間を共有していない",
    },
    description={
        "en": "With pidMode host the containers see every process on the instance, other "
        "tasks' included: they can read their command lines and environments under /proc "
        "(where secrets often sit) and, with enough privilege, signal or trace them.",
        "ja": "pidMode が host だと、コンテナは他のタスクを含むインスタンス上の全プロセスを見られ"
        "る。/proc からコマンドラインや環境変数（シークレットが置かれやすい）を読め、権限が"
        "あればシグナル送信やトレースもできる。",
    },
    remediation={
        "en": "Remove pidMode, or set it to task when the task's containers must see each "
        "other's processes, and register a new revision.",
        "ja": "pidMode を削除するか、タスク内のコンテナ同士でプロセスを見る必要がある場合は task "
        "にして、新しいリビジョンを登録する。",
    },
    fail={"en": "pidMode is host", "ja": "pidMode が host"},
    passed={"en": "pidMode is {mode}", "ja": "pidMode は {mode}"},
)
def taskdef_host_pid_mode(ctx: CheckContext) -> Iterator[Result]:
    yield from _host_mode(ctx, "pidMode")


@check(
    id="ecs.taskdef_host_ipc_mode",
    severity="high",
    pillar="security",
    resource_type=TD,
    needs=NEEDS_TD,
    title={
        "en": "Task definitions do not share the host's IPC namespace",
        "ja": "タスク定義はホストの IPC 名前空間を共有していない",
    },
    description={
        "en": "With ipcMode host the containers share the instance's System V IPC objects and "
        "POSIX shared memory with every process on it: they can read or corrupt other "
        "workloads' shared memory segments and message queues.",
        "ja": "ipcMode が host だと、コンテナはインスタンス上の全プロセスと System V IPC "
        "オブジェクトや POSIX 共有メモリを共有し、他のワークロードの共有メモリやメッセージ"
        "キューを読んだり壊したりできる。",
    },
    remediation={
        "en": "Remove ipcMode (or set it to task or none) and register a new revision.",
        "ja": "ipcMode を削除する（または task か none にする）新しいリビジョンを登録する。",
    },
    fail={"en": "ipcMode is host", "ja": "ipcMode が host"},
    passed={"en": "ipcMode is {mode}", "ja": "ipcMode は {mode}"},
)
def taskdef_host_ipc_mode(ctx: CheckContext) -> Iterator[Result]:
    yield from _host_mode(ctx, "ipcMode")


@check(
    id="ecs.taskdef_efs_transit_encryption",
    severity="medium",
    pillar="security",
    resource_type=TD,
    controls=["SecurityHub:ECS.18"],
    needs=NEEDS_TD,
    title={
        "en": "EFS volumes are mounted with encryption in transit",
        "ja": "EFS ボリュームは転送時の暗号化を有効にしてマウントされている",
    },
    description={
        "en": "Without transitEncryption ENABLED, NFS traffic between the task and the EFS "
        "file system crosses the VPC in clear text. Only task definitions with EFS volumes "
        "are evaluated.",
        "ja": "transitEncryption が ENABLED でないと、タスクと EFS ファイルシステム間の NFS 通信は"
        "VPC 内を平文で流れる。EFS ボリュームを持つタスク定義のみを評価する。",
    },
    remediation={
        "en": "Set efsVolumeConfiguration.transitEncryption to ENABLED on each EFS volume "
        "(consider authorizationConfig.iam ENABLED and an access point as well) and register "
        "a new revision.",
        "ja": "各 EFS ボリュームの efsVolumeConfiguration.transitEncryption を ENABLED にし"
        "（authorizationConfig.iam の ENABLED とアクセスポイントの利用も検討する）、新しい"
        "リビジョンを登録する。",
    },
    fail={
        "en": "EFS volumes without encryption in transit: {volumes}",
        "ja": "転送時の暗号化がない EFS ボリューム: {volumes}",
    },
    passed={
        "en": "every EFS volume uses encryption in transit",
        "ja": "すべての EFS ボリュームが転送時の暗号化を使っている",
    },
)
def taskdef_efs_transit_encryption(ctx: CheckContext) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        efs = [v for v in td.get("volumes") or [] if v.get("efsVolumeConfiguration")]
        if not efs:
            continue
        bad = [
            f"{v.get('name', '?')} ({v['efsVolumeConfiguration'].get('fileSystemId', '?')})"
            for v in efs
            if v["efsVolumeConfiguration"].get("transitEncryption") != "ENABLED"
        ]
        yield Result(td["taskDefinitionArn"], region, not bad, {"volumes": ", ".join(bad)})


@check(
    id="ecs.taskdef_tagged",
    severity="low",
    pillar="security",
    resource_type=TD,
    controls=["SecurityHub:ECS.15"],
    needs=NEEDS_TD,
    title={"en": "Task definitions are tagged", "ja": "タスク定義にタグが付いている"},
    description={
        "en": "Tags tell who owns a task definition and what it runs; they drive cost "
        "allocation, attribute-based access control and mutelist entries. System tags "
        "(aws:…) do not count.",
        "ja": "タグはタスク定義の所有者や用途を示し、コスト配分、属性ベースのアクセス制御、"
        "ミュートリストの指定に使われる。システムタグ（aws:…）は数えない。",
    },
    remediation={
        "en": "Tag the task definition (ecs tag-resource, or tags in RegisterTaskDefinition), "
        "at least with an owner or team key.",
        "ja": "タスク定義にタグを付ける（ecs tag-resource、または RegisterTaskDefinition の"
        " tags）。少なくとも所有者やチームのキーを付ける。",
    },
    fail={"en": "the task definition has no tags", "ja": "タスク定義にタグがない"},
    passed={"en": "tagged: {keys}", "ja": "タグ: {keys}"},
)
def taskdef_tagged(ctx: CheckContext) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        keys = sorted(
            str(t.get("key", ""))
            for t in td.get("tags") or []
            if t.get("key") and not str(t["key"]).lower().startswith("aws:")
        )
        yield Result(td["taskDefinitionArn"], region, bool(keys), {"keys": ", ".join(keys)})


@check(
    id="ecs.taskdef_shared_task_execution_role",
    severity="medium",
    pillar="iam",
    resource_type=TD,
    needs=NEEDS_TD,
    title={
        "en": "The task role and the task execution role are different roles",
        "ja": "タスクロールとタスク実行ロールは別のロールになっている",
    },
    description={
        "en": "The execution role is for ECS itself: pulling images, writing logs, reading "
        "the task's secrets to inject them. The task role is what the application's code "
        "gets. When both are the same role, the application can pull any image and read "
        "every secret the execution role can, including other containers' secrets, which "
        "defeats the point of passing secrets through ECS. Only task definitions that set "
        "both roles are evaluated.",
        "ja": "実行ロールは ECS 自身のためのもの（イメージの取得、ログの書き込み、注入するための"
        "シークレットの読み取り）で、タスクロールはアプリケーションのコードが使うものである。"
        "両者が同じロールだと、アプリケーションは実行ロールが取得できるすべてのイメージと"
        "読めるすべてのシークレット（他のコンテナのものも含む）にアクセスでき、ECS 経由で"
        "シークレットを渡す意味が失われる。両方のロールを指定したタスク定義のみを評価する。",
    },
    remediation={
        "en": "Create a separate task role with only the permissions the application uses, "
        "set it as taskRoleArn, and keep the execution role for ECS.",
        "ja": "アプリケーションが使う権限だけを持つタスクロールを別に作成して taskRoleArn に"
        "指定し、実行ロールは ECS 用に残す。",
    },
    fail={
        "en": "task role and execution role are the same role: {role}",
        "ja": "タスクロールと実行ロールが同じロール: {role}",
    },
    passed={
        "en": "task role {task_role} and execution role {execution_role} differ",
        "ja": "タスクロール {task_role} と実行ロール {execution_role} は別",
    },
)
def taskdef_shared_task_execution_role(ctx: CheckContext) -> Iterator[Result]:
    for region, td in ctx.task_definitions():
        task, execution = td.get("taskRoleArn"), td.get("executionRoleArn")
        if not task or not execution:
            continue
        task_role, execution_role = _role_key(ctx, task), _role_key(ctx, execution)
        params = {
            "role": task_role[1],
            "task_role": task_role[1],
            "execution_role": execution_role[1],
        }
        yield Result(td["taskDefinitionArn"], region, task_role != execution_role, params)


def _role_key(ctx: CheckContext, ref: str) -> tuple[str, str]:
    """(account, role name) for a role ARN or a bare name (which means this account)."""
    name = ref.rsplit("/", 1)[-1]
    account = ref.split(":")[4] if ref.startswith("arn:") and ref.count(":") >= 5 else ctx.account
    return account, name
