"""Axis ids for arrays read from files: parse, guess from shape, and fit to a model's axes.

Axis ids are the ids a model description uses (``"batch"``, ``"channel"``, ``"time"``,
``"index"``, ``"x"``, ``"y"``, ``"z"`` or any other id it declares). Users may write them as a
string of letters: ``b`` → batch, ``c`` → channel, ``t`` → time, ``i`` → index, ``x``/``y``/``z``.

Guessing rules (:func:`guess_axes`), used only when neither the caller nor the file names the
axes. A size is *small* when it is at most 4; *colour-like* when it is 1, 3 or 4.

==========  ===================================================  ===============
dimensions  condition                                            axes
==========  ===================================================  ===============
2           always                                               y x
3           last size colour-like                                y x channel
3           first size small                                     channel y x
3           otherwise                                            z y x
4           first and second size small                          batch channel y x
4           first size small, last size colour-like              batch y x channel
4           last size colour-like, first size not small          z y x channel
4           otherwise                                            channel z y x
5           last size colour-like, second size not small         batch z y x channel
5           otherwise                                            batch channel z y x
other       —                                                    error: give axes
==========  ===================================================  ===============

Channel-last comes first for 3D because images (PNG, JPEG, RGB TIFF) store colour last; a small
leading size means channel-first otherwise, as in bioimageio.core. Guessing is a convenience:
give ``axes=`` whenever the layout is not obvious. Singleton axes are harmless either way, since
:func:`fit_to_axes` drops extra singleton axes and adds missing ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bioimageio_core.errors import InputError
from bioimageio_core.tensor import AXIS_LETTERS as AXIS_LETTERS  # re-exported
from bioimageio_core.tensor import Tensor

AxesLike = str | Sequence[str]
"""Axes as a string of letters (``"bcyx"``) or a sequence of axis ids (``["batch", "y"]``)."""


def parse_axes(axes: AxesLike) -> tuple[str, ...]:
    """Return the axis ids of ``axes`` (letters string or sequence of ids); ids must be unique.

    A sequence may hold letters or full ids (``["b", "channel"]``); a string holds letters only.
    """
    if isinstance(axes, str):
        unknown = [a for a in axes if a.lower() not in AXIS_LETTERS]
        if unknown:
            raise InputError(
                f"unknown axis letter(s) {', '.join(map(repr, unknown))} in axes {axes!r}",
                hint="letters are b (batch), c (channel), t (time), i (index), x, y, z; "
                "give other axis ids as a list, e.g. ['channel', 'y', 'x']",
            )
        ids = tuple(AXIS_LETTERS[a.lower()] for a in axes)
    else:
        ids = tuple(AXIS_LETTERS.get(str(a), str(a)) for a in axes)
        empty = [i for i, a in enumerate(ids) if not a]
        if empty:
            raise InputError(f"axis ids must not be empty (axes {list(axes)!r})")
    if len(set(ids)) != len(ids):
        raise InputError(f"axis ids must be unique; got {ids} from {axes!r}")
    return ids


def format_axes(dims: Sequence[str]) -> str:
    """``("batch", "channel", "y")`` → ``"(batch, channel, y)"`` for messages."""
    return "(" + ", ".join(dims) + ")"


def _small(size: int) -> bool:
    return size <= 4


def _colour_like(size: int) -> bool:
    return size in (1, 3, 4)


def guess_axes(shape: Sequence[int]) -> tuple[str, ...]:
    """Guess axis ids from an array shape (rules in the module docstring)."""
    shape = tuple(int(s) for s in shape)
    n = len(shape)
    letters: str
    if n == 2:
        letters = "yx"
    elif n == 3:
        if _colour_like(shape[2]):
            letters = "yxc"
        elif _small(shape[0]):
            letters = "cyx"
        else:
            letters = "zyx"
    elif n == 4:
        if _small(shape[0]) and _small(shape[1]):
            letters = "bcyx"
        elif _small(shape[0]) and _colour_like(shape[3]):
            letters = "byxc"
        elif _colour_like(shape[3]):
            letters = "zyxc"
        else:
            letters = "czyx"
    elif n == 5:
        letters = "bzyxc" if _colour_like(shape[4]) and not _small(shape[1]) else "bczyx"
    else:
        raise InputError(
            f"cannot guess the axes of an array with {n} dimensions (shape {shape})",
            hint="give the axes explicitly, e.g. axes='bcyx'",
        )
    return parse_axes(letters)


def resolve_axes(
    shape: Sequence[int],
    axes: AxesLike | None = None,
    *,
    recorded: Sequence[str] | None = None,
    expected: AxesLike | None = None,
    source: str = "array",
) -> tuple[str, ...]:
    """Choose the axis ids for an array of ``shape``.

    Order of precedence: explicit ``axes``; axes ``recorded`` in the file; ``expected`` (the
    model's axes) when the number of dimensions matches; :func:`guess_axes`.
    """
    ndim = len(shape)
    if axes is not None:
        ids = parse_axes(axes)
        if len(ids) != ndim:
            raise InputError(
                f"{source} has {ndim} dimensions (shape {tuple(shape)}) but axes "
                f"{format_axes(ids)} name {len(ids)}",
                hint="give one axis per dimension",
            )
        return ids
    if recorded is not None and len(recorded) == ndim:
        return tuple(recorded)
    if expected is not None:
        ids = parse_axes(expected)
        if len(ids) == ndim:
            return ids
    return guess_axes(shape)


def fit_to_axes(
    tensor: Tensor,
    target_axes: AxesLike,
    target_sizes: Mapping[str, int | None] | None = None,
    *,
    name: str = "tensor",
) -> Tensor:
    """Return ``tensor`` with exactly ``target_axes`` in that order (a view, never a copy).

    Axes the tensor lacks are added with size 1; axes the target lacks are dropped when their size
    is 1. ``target_sizes`` (axis id → size, None for any size) checks fixed sizes. ``name`` appears
    in error messages (e.g. ``"input 'raw'"``).
    """
    target = parse_axes(target_axes)
    sizes = tensor.sizes
    described = f"{name} has axes {format_axes(tensor.dims)}"

    extra = [d for d in tensor.dims if d not in target]
    too_big = [d for d in extra if sizes[d] != 1]
    if too_big:
        d = too_big[0]
        raise InputError(
            f"{described} with {d}={sizes[d]} but the model expects axes {format_axes(target)} "
            f"without {d!r}",
            hint=f"give the axes explicitly (e.g. axes='yx') or select one {d} from the data",
        )
    expected = {AXIS_LETTERS.get(k, k): v for k, v in (target_sizes or {}).items()}
    for d in target:
        want = expected.get(d)
        have = sizes.get(d, 1)
        if want is not None and have != want:
            if d == "channel":
                noun = "1 channel" if want == 1 else f"{want} channels"
            else:
                noun = f"{d}={want}"
            found = f"with {d}={have}" if d in sizes else f"without {d!r} (size 1)"
            raise InputError(
                f"{described} {found} but the model expects {noun}",
                hint="check the axes of the input (axes='...') or the image format",
            )

    squeezed = tensor[{d: 0 for d in extra}] if extra else tensor
    missing = [d for d in target if d not in squeezed.dims]
    if missing:
        data = np.expand_dims(squeezed.data, tuple(range(len(missing))))
        squeezed = Tensor(data, [*missing, *squeezed.dims])
    return squeezed.transpose(target)
