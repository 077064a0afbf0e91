import builtins

from typing_extensions import Buffer

class Numbered:
    def __len__(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    def encode(
        self,
        offsets: Buffer,
        data: Buffer,
        validity: Buffer | None,
        validity_offset: int,
        rows: list[int],
    ) -> tuple[list[int], list[builtins.bytes]]: ...

class LeafIds(Numbered):
    def __init__(self, parts: list[str]) -> None: ...

class SelectorIds(Numbered):
    def __init__(self, steps: list[str | int]) -> None: ...
