from typing_extensions import Buffer

class LeafIds:
    def __init__(self, parts: list[str]) -> None: ...
    def __len__(self) -> int: ...
    def encode(
        self,
        offsets: Buffer,
        data: Buffer,
        validity: Buffer | None,
        validity_offset: int,
        rows: list[int],
    ) -> tuple[list[int], list[bytes]]: ...
