"""Frame encoders of the terminal UI: half-block strips, sixel and kitty graphics, on real pixels.

The sixel and kitty outputs are read back by the minimal decoders beside the encoders, so a
round trip checks every register, band, run and chunk the encoders wrote.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.color import ColorType
from rich.segment import Segment

from tui.encoders import (
    KITTY_CHUNK_BYTES,
    SIXEL_MAX_COLOURS,
    decode_kitty,
    decode_sixel,
    encode_kitty,
    encode_sixel,
)
from tui.halfblock import UPPER_HALF_BLOCK, HalfBlockRenderer, detect_truecolor, quantise_xterm256

GRASS = (102, 204, 102)
GRASS_LIGHT = (102, 230, 102)
ROAD = (102, 102, 102)
CAR = (204, 0, 0)
CUBE_LEVELS = np.arange(0, 256, 51)  # 0, 51, ..., 255: exact in sixel's 0-100 percent registers
CUBE = np.stack(np.meshgrid(CUBE_LEVELS, CUBE_LEVELS, CUBE_LEVELS, indexing="ij"), -1).reshape(-1, 3).astype(np.uint8)
SIXEL_PERCENT_ERROR = 1  # 0-255 levels lost to sixel's 0-100 percent colour registers
SIXEL_CUBE_ERROR = 25 + SIXEL_PERCENT_ERROR  # worst case of the 6x6x6 cube fallback (half a step of 51)


def carracing_like(h: int = 96, w: int = 96) -> np.ndarray:
    """(h, w, 3) uint8: striped grass, a grey road, a red car, a black dashboard."""
    f = np.empty((h, w, 3), np.uint8)
    f[:] = GRASS
    f[(np.arange(h) // 8) % 2 == 1] = GRASS_LIGHT
    f[:, w * 3 // 8 : w * 5 // 8] = ROAD
    f[h * 5 // 8 : h * 6 // 8, w * 11 // 24 : w * 13 // 24] = CAR
    f[h * 7 // 8 :] = 0
    return f


def cube_frame(h: int, w: int, seed: int) -> np.ndarray:
    """(h, w, 3) uint8 of random 6x6x6-cube colours (all 216 appear when the frame is large enough)."""
    rng = np.random.default_rng(seed)
    return CUBE[rng.integers(0, len(CUBE), size=(h, w))]


def noise_frame(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def repeat2(frame: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1)


# ---------------------------------------------------------------------------------------------- sixel


@pytest.mark.parametrize("shape", [(96, 96), (37, 50), (1, 1)])
def test_sixel_round_trip_is_exact_for_cube_colours(shape):
    frame = cube_frame(*shape, seed=1)
    assert np.array_equal(decode_sixel(encode_sixel(frame)), frame)


def test_sixel_round_trip_of_a_carracing_frame_is_within_register_precision():
    frame = carracing_like()
    frame[40:44, 10:20] = (100, 202, 100)  # off the cube: exact palette, percent precision only
    decoded = decode_sixel(encode_sixel(frame))
    assert np.abs(decoded.astype(int) - frame).max() <= SIXEL_PERCENT_ERROR


def test_sixel_many_colours_are_grouped_within_the_group_error():
    y, x = np.mgrid[0:96, 0:96]
    frame = np.stack([x * 2, y * 2, np.full_like(x, 77)], -1).astype(np.uint8)  # 9216 colours
    decoded = decode_sixel(encode_sixel(frame))
    assert np.abs(decoded.astype(int) - frame).max() <= 7 + SIXEL_PERCENT_ERROR  # grouped by the top 5 bits


def test_sixel_noise_falls_back_to_the_cube():
    frame = noise_frame(48, 64, seed=2)
    out = encode_sixel(frame)
    assert len(re.findall(r"#\d+;2;", out)) <= SIXEL_MAX_COLOURS
    assert np.abs(decode_sixel(out).astype(int) - frame).max() <= SIXEL_CUBE_ERROR


def test_sixel_scale_2_repeats_each_pixel():
    frame = cube_frame(30, 41, seed=3)
    out = encode_sixel(frame, scale=2)
    assert out.startswith('\x1bPq"1;1;82;60#')
    assert np.array_equal(decode_sixel(out), repeat2(frame))


def test_sixel_structure_registers_and_run_lengths():
    frame = carracing_like()
    out = encode_sixel(frame)
    assert out.startswith('\x1bPq"1;1;96;96') and out.endswith("\x1b\\")
    registers = re.findall(r"#(\d+);2;(\d+);(\d+);(\d+)", out)
    assert len(registers) == len(np.unique(frame.reshape(-1, 3), axis=0))
    assert all(0 <= int(v) <= 100 for reg in registers for v in reg[1:])
    assert out.count("-") == 96 // 6 - 1  # one per band boundary
    assert "!" in out and len(out) < 4000  # flat areas are run-length encoded


def test_encoders_reject_bad_frames():
    with pytest.raises(ValueError):
        encode_sixel(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError):
        encode_kitty(np.zeros((4, 4)), image_id=1)
    with pytest.raises(ValueError):
        encode_sixel(np.zeros((4, 4, 3), np.uint8), scale=0)
    with pytest.raises(ValueError):
        encode_kitty(np.zeros((4, 4, 3), np.uint8), image_id=0)


# ---------------------------------------------------------------------------------------------- kitty


def kitty_chunks(data: str) -> list[tuple[dict[str, str], str]]:
    chunks = re.findall(r"\x1b_G([^;\x1b]*);([^\x1b]*)\x1b\\", data)
    assert "".join(f"\x1b_G{k};{p}\x1b\\" for k, p in chunks) == data  # nothing else in the output
    return [(dict(kv.split("=") for kv in keys.split(",")), payload) for keys, payload in chunks]


@pytest.mark.parametrize("compress", [False, True])
def test_kitty_round_trip_is_exact(compress):
    for frame in (noise_frame(96, 96, seed=4), carracing_like(), noise_frame(7, 3, seed=5)):
        assert np.array_equal(decode_kitty(encode_kitty(frame, 7, compress=compress)), frame)


def test_kitty_scale_2_repeats_each_pixel():
    frame = noise_frame(20, 33, seed=6)
    out = encode_kitty(frame, 3, scale=2)
    first = kitty_chunks(out)[0][0]
    assert (first["s"], first["v"]) == ("66", "40")
    assert np.array_equal(decode_kitty(out), repeat2(frame))


def test_kitty_chunking():
    out = encode_kitty(noise_frame(96, 96, seed=7), 42, columns=24, rows=12, compress=False, placement_id=5)
    chunks = kitty_chunks(out)
    assert len(chunks) == -(-(96 * 96 * 3 * 4 // 3) // KITTY_CHUNK_BYTES)  # 36864 base64 bytes in 4096s
    first = chunks[0][0]
    assert first["a"] == "T" and first["f"] == "24" and first["i"] == "42" and first["q"] == "2"
    placement = {k: first[k] for k in ("s", "v", "c", "r", "p", "C")}
    assert placement == {"s": "96", "v": "96", "c": "24", "r": "12", "p": "5", "C": "1"}
    assert "o" not in first
    assert [keys["m"] for keys, _ in chunks] == ["1"] * (len(chunks) - 1) + ["0"]
    assert all(set(keys) <= {"m", "q"} for keys, _ in chunks[1:])  # continuations: m (and q) only
    assert all(len(p) <= KITTY_CHUNK_BYTES for _, p in chunks)
    assert all(len(p) % 4 == 0 for _, p in chunks[:-1])


def test_kitty_compression_is_marked_and_shrinks_flat_frames():
    frame = carracing_like()
    plain, packed = encode_kitty(frame, 1, compress=False), encode_kitty(frame, 1, compress=True)
    assert kitty_chunks(packed)[0][0]["o"] == "z"
    assert len(packed) * 5 < len(plain)
    assert kitty_chunks(packed)[-1][0]["m"] == "0"


# ---------------------------------------------------------------------------------------------- half-block


def cell_colours(strip, x: int) -> tuple:
    """(top, bottom) rich Colors of cell x of a half-block strip."""
    for seg in strip:
        if x < len(seg.text):
            if seg.text[0] == UPPER_HALF_BLOCK:
                return seg.style.color, seg.style.bgcolor
            assert seg.text[0] == " "
            return seg.style.bgcolor, seg.style.bgcolor
        x -= len(seg.text)
    raise IndexError(x)


def rgb(color) -> tuple[int, int, int]:
    return tuple(color.get_truecolor())


@pytest.mark.parametrize("width, height", [(96, 48), (40, 10), (120, 30), (7, 1)])
def test_halfblock_strip_count_and_width(width, height):
    strips = HalfBlockRenderer().render(carracing_like(), width, height)
    assert len(strips) == height
    for strip in strips:
        assert strip.cell_length == width
        assert Segment.get_line_length(list(strip)) == width


def test_halfblock_cells_show_the_frame_pixels():
    frame = cube_frame(96, 96, seed=8)
    frame[:, 60:70] = ROAD  # some runs to merge
    strips = HalfBlockRenderer().render(frame, 96, 48)
    for y, x in [(0, 0), (5, 17), (20, 61), (20, 69), (47, 95), (33, 48)]:
        top, bottom = cell_colours(strips[y], x)
        assert rgb(top) == tuple(frame[2 * y, x]) and rgb(bottom) == tuple(frame[2 * y + 1, x])


def test_halfblock_keeps_the_aspect_ratio_with_black_margins():
    frame = carracing_like()
    strips = HalfBlockRenderer().render(frame, 120, 48)  # 96x96 pixels centred in 120x96
    assert cell_colours(strips[10], 0) == cell_colours(strips[10], 11)
    assert rgb(cell_colours(strips[10], 11)[0]) == (0, 0, 0)
    assert rgb(cell_colours(strips[10], 12)[0]) == tuple(frame[20, 0])
    assert rgb(cell_colours(strips[10], 107)[1]) == tuple(frame[21, 95])
    assert rgb(cell_colours(strips[10], 108)[1]) == (0, 0, 0)


def test_halfblock_256_colour_mode_uses_only_8_bit_colours():
    frame = noise_frame(96, 96, seed=9)
    frame[:4, :4] = (95, 135, 175)  # exactly xterm colour 67
    strips = HalfBlockRenderer(truecolor=False).render(frame, 96, 48)
    for strip in strips:
        for seg in strip:
            for color in (seg.style.color, seg.style.bgcolor):
                assert color is None or color.type == ColorType.EIGHT_BIT
    assert cell_colours(strips[0], 0)[0].number == 67
    packed = (frame[..., 0].astype(np.uint32) << 16) | (frame[..., 1].astype(np.uint32) << 8) | frame[..., 2]
    top, bottom = cell_colours(strips[7], 9)
    assert (top.number, bottom.number) == (int(quantise_xterm256(packed[14, 9])), int(quantise_xterm256(packed[15, 9])))


def test_quantise_xterm256_is_near():
    values = noise_frame(64, 64, seed=10).reshape(-1, 3).astype(np.int64)
    packed = (values[:, 0] << 16) | (values[:, 1] << 8) | values[:, 2]
    index = quantise_xterm256(packed)
    assert index.min() >= 16 and index.max() <= 255
    greys = quantise_xterm256(np.array([0x080808, 0xEEEEEE, 0x000000, 0xFFFFFF, 0x5F87AF]))
    assert greys.tolist() == [232, 255, 16, 231, 67]


def test_halfblock_second_render_returns_the_same_strips():
    renderer = HalfBlockRenderer()
    frame = carracing_like()
    first = renderer.render(frame, 96, 48)
    second = renderer.render(frame.copy(), 96, 48)
    assert first == second
    assert all(a is b for a, b in zip(first, second))
    fresh = HalfBlockRenderer().render(frame, 96, 48)
    assert fresh == first  # the cache changes nothing but the speed


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"COLORTERM": "truecolor", "TERM": "xterm-256color"}, True),
        ({"COLORTERM": "24bit"}, True),
        ({"TERM_PROGRAM": "iTerm.app"}, True),
        ({"TERM_PROGRAM": "WezTerm"}, True),
        ({"TERM_PROGRAM": "vscode"}, True),
        ({"TERM": "xterm-kitty"}, True),
        ({"TERM": "xterm-direct"}, True),
        ({"TERM": "alacritty"}, True),
        ({"TERM": "foot"}, True),
        ({"WT_SESSION": "1f2e"}, True),
        ({"TERM": "xterm-256color"}, False),  # the usual state over SSH: COLORTERM is not forwarded
        ({"TERM_PROGRAM": "Apple_Terminal", "TERM": "xterm-256color"}, False),
        ({"COLORTERM": "yes", "TERM": "screen-256color"}, False),
        ({}, False),
    ],
)
def test_detect_truecolor(environ, expected):
    assert detect_truecolor(environ) is expected
