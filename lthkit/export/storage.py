"""A ticket on disk: sparse (survivors' values and their indices) beside the dense file, each also compressed.

Four formats, all NumPy ``.npz`` archives (a zip of arrays) so that only the content differs:

* ``dense``: every tensor of the masked network's ``state_dict`` as it is, pruned weights as zeros (as the
  network names them: a BatchNorm the exports fold stays a BatchNorm here);
* ``dense_compressed``: the same, deflate-compressed (long runs of zeros compress well);
* ``sparse``: every layer weight in CSR form: its surviving values (float32), the column index of
  each (``uint8``, ``uint16`` or ``uint32``, the smallest that holds them), where each row starts,
  and its shape; every other tensor (the biases) as it is;
* ``sparse_compressed``: the same, compressed.

The sparse file *is* the ticket: its indices are the masks, read from the masks themselves (a
surviving weight that is exactly 0 stays a survivor), so :func:`load_sparse` gives back the weights
and the masks. Files are read with ``allow_pickle=False``: nothing in them is ever unpickled.

Example:
    >>> from lthkit.core.models import build_model
    >>> from lthkit.core.masks import full_masks
    >>> model = build_model("lenet300_100", seed=0)
    >>> masks = {name: torch.rand(mask.shape, generator=torch.Generator().manual_seed(1)) < 0.1
    ...          for name, mask in full_masks(model).items()}
    >>> sizes = file_sizes(model, masks)
    >>> sizes["sparse"] < sizes["dense"] / 4, sizes["sparse_compressed"] <= sizes["sparse"]
    (True, True)
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..core.files import atomic_write_bytes
from ..errors import LthkitError
from .ticket import PreparedTicket, prepare_ticket

#: The file formats :func:`file_sizes` measures, in the order reports list them.
FORMATS = ("dense", "dense_compressed", "sparse", "sparse_compressed")
#: How figures and reports name each format, and its colour.
FORMAT_LABELS = {"dense": "dense", "dense_compressed": "dense, compressed", "sparse": "sparse (CSR)",
                 "sparse_compressed": "sparse (CSR), compressed"}
FORMAT_COLOURS = {"dense": "#000000", "dense_compressed": "#7f7f7f", "sparse": "#d62728",
                  "sparse_compressed": "#ff9896"}
#: Marks an lthkit sparse ticket file (the array's value is the format's version).
MARKER = "__lthkit_sparse_ticket__"
_PARTS = ("values", "col", "crow", "shape")
#: The most weights one tensor of a sparse file may claim (a guard against a broken or hostile file).
MAX_ELEMENTS = 2 ** 28


def _index_dtype(largest: int):
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()


def dense_arrays(ticket: PreparedTicket) -> dict[str, np.ndarray]:
    """The masked network's ``state_dict`` as arrays (the dense file's content)."""
    return {name: _numpy(value) for name, value in ticket.state_dict().items()}


def sparse_arrays(ticket: PreparedTicket) -> dict[str, np.ndarray]:
    """The sparse file's content: each layer weight as CSR arrays, every other tensor as it is."""
    arrays = {MARKER: np.array(1, dtype=np.int64)}
    for name, value in ticket.state_dict().items():
        mask = ticket.masks.get(name)
        if mask is None:
            arrays[name] = _numpy(value)
            continue
        rows = value.shape[0]
        flat, flat_mask = value.reshape(rows, -1), mask.reshape(rows, -1)
        counts = flat_mask.sum(1).cumsum(0)
        arrays[f"{name}.values"] = _numpy(flat[flat_mask])
        arrays[f"{name}.col"] = _numpy(flat_mask.nonzero()[:, 1]).astype(_index_dtype(flat.shape[1] - 1))
        arrays[f"{name}.crow"] = np.concatenate([[0], _numpy(counts)]).astype(_index_dtype(int(counts[-1])))
        arrays[f"{name}.shape"] = np.array(value.shape, dtype=np.int64)
    return arrays


def archive_bytes(arrays: dict, compressed: bool) -> bytes:
    """``arrays`` as the bytes of an ``.npz`` file (deflate-compressed when ``compressed``)."""
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def file_sizes(model, masks=None, input_shape=(1, 28, 28)) -> dict[str, int]:
    """Bytes of the ticket in each of :data:`FORMATS`.

    Args:
        model: the trained network, or a prepared :class:`~lthkit.export.ticket.PreparedTicket`.
        masks: its masks (as for :func:`~lthkit.export.ticket.prepare_ticket`).
        input_shape: one example's input shape.

    Returns:
        ``{format: bytes}``.
    """
    ticket = model if isinstance(model, PreparedTicket) else prepare_ticket(model, masks, input_shape)
    dense, sparse = dense_arrays(ticket), sparse_arrays(ticket)
    return {"dense": len(archive_bytes(dense, False)), "dense_compressed": len(archive_bytes(dense, True)),
            "sparse": len(archive_bytes(sparse, False)), "sparse_compressed": len(archive_bytes(sparse, True))}


def save_sparse(path, model, masks=None, *, compressed: bool = True, input_shape=(1, 28, 28)) -> Path:
    """Write the ticket as a sparse ``.npz`` file (atomically), masks included.

    Args:
        path: the file to write.
        model: the trained network, or a prepared :class:`~lthkit.export.ticket.PreparedTicket`.
        masks: its masks (as for :func:`~lthkit.export.ticket.prepare_ticket`).
        compressed: deflate-compress the archive.
        input_shape: one example's input shape.

    Returns:
        ``path``.
    """
    ticket = model if isinstance(model, PreparedTicket) else prepare_ticket(model, masks, input_shape)
    path = Path(path)
    atomic_write_bytes(path, archive_bytes(sparse_arrays(ticket), compressed))
    return path


def _broken(path, reason: str) -> LthkitError:
    return LthkitError(f"{path} is not a sparse ticket file of lthkit ({reason})")


def load_sparse(path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read a file written by :func:`save_sparse`: the dense ``state_dict`` and the masks.

    Returns:
        ``(state_dict, masks)``: every tensor dense (pruned weights 0), and ``{weight name: bool mask}``.
        Load the first into the network (``model.load_state_dict``) and keep the second with it.

    Raises:
        LthkitError: the file is missing, not an ``.npz`` archive, or its arrays are inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise LthkitError(f"no sparse ticket file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise _broken(path, (str(error).splitlines() or [type(error).__name__])[0][:120]) from None
    if MARKER not in arrays:
        raise _broken(path, "it has no marker array")
    state, masks, decoded = {}, {}, {}
    weights = sorted({name.rsplit(".", 1)[0] for name in arrays if name.endswith(".shape")})
    parts = {f"{name}.{part}" for name in weights for part in _PARTS}
    for name in weights:
        missing = [part for part in _PARTS if f"{name}.{part}" not in arrays]
        if missing:
            raise _broken(path, f"{name} lacks {', '.join(missing)}")
        shape_array, values = arrays[f"{name}.shape"], arrays[f"{name}.values"]
        col, crow = arrays[f"{name}.col"], arrays[f"{name}.crow"]
        if not (np.issubdtype(shape_array.dtype, np.integer) and np.issubdtype(col.dtype, np.integer)
                and np.issubdtype(crow.dtype, np.integer) and np.issubdtype(values.dtype, np.floating)):
            raise _broken(path, f"{name}'s arrays have the wrong types")
        shape = tuple(int(size) for size in shape_array.reshape(-1))
        if not shape or any(size < 1 for size in shape) or values.ndim != 1 or col.ndim != 1 or crow.ndim != 1:
            raise _broken(path, f"{name} has malformed arrays")
        rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if rows * cols > MAX_ELEMENTS:
            raise _broken(path, f"{name} claims {rows * cols:,} weights, more than {MAX_ELEMENTS:,}")
        crow, col = crow.astype(np.int64), col.astype(np.int64)
        if crow.shape[0] != rows + 1 or crow[0] != 0 or np.any(np.diff(crow) < 0) or int(crow[-1]) != values.shape[0] \
                or col.shape[0] != values.shape[0] or (col.size and (int(col.min()) < 0 or int(col.max()) >= cols)):
            raise _broken(path, f"{name}'s indices do not describe a {rows} x {cols} matrix")
        rows_of = np.repeat(np.arange(rows), np.diff(crow))
        mask = torch.zeros(rows, cols, dtype=torch.bool)
        dense = torch.zeros(rows, cols, dtype=torch.from_numpy(values[:0]).dtype)
        mask[torch.from_numpy(rows_of), torch.from_numpy(col)] = True
        if int(mask.sum()) != values.shape[0]:
            raise _broken(path, f"{name}'s indices repeat")
        dense[torch.from_numpy(rows_of), torch.from_numpy(col)] = torch.from_numpy(values.copy())
        decoded[name], masks[name] = dense.reshape(shape), mask.reshape(shape)
    for name, value in arrays.items():  # in the file's order, which is the state_dict's
        if name.endswith(".values") and name[:-len(".values")] in decoded:
            state[name[:-len(".values")]] = decoded[name[:-len(".values")]]
        elif name != MARKER and name not in parts:
            state[name] = torch.from_numpy(value.copy())
    return state, masks
