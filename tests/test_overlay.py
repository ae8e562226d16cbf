"""poissonblend.overlay: the app's pictures, checked pixel by pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poissonblend import overlay
from poissonblend.lesions import label_lesions


def disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


@pytest.fixture
def slice_():
    rng = np.random.default_rng(0)
    return rng.integers(40, 120, (64, 80), dtype=np.uint8)


def colour_pixels(rgb, colour):
    return np.all(rgb == np.asarray(colour, np.uint8), axis=2)


def test_fit_zoom():
    assert overlay.fit_zoom((256, 256)) == 2
    assert overlay.fit_zoom((112, 112)) == 4
    assert overlay.fit_zoom((128, 128), 384) == 3
    assert overlay.fit_zoom((1024, 900)) == 1
    assert overlay.fit_zoom((8, 8)) == 8  # capped


@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9))
@settings(max_examples=30, deadline=None)
def test_upscale_maps_pixel_blocks(zoom, h, w):
    img = np.arange(h * w, dtype=np.int32).reshape(h, w)
    big = overlay.upscale(img, zoom)
    assert big.shape == (h * zoom, w * zoom)
    for y in range(h):
        for x in range(w):
            assert (big[y * zoom:(y + 1) * zoom, x * zoom:(x + 1) * zoom] == img[y, x]).all()


def test_upscale_rejects_bad_zoom(slice_):
    with pytest.raises(ValueError):
        overlay.upscale(slice_, 0)
    with pytest.raises(ValueError):
        overlay.upscale(slice_, 1.5)


def test_to_rgb_is_grey(slice_):
    rgb = overlay.to_rgb(slice_, 3)
    assert rgb.shape == (192, 240, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb[5, 7, 0] == slice_[1, 2]
    with pytest.raises(ValueError):
        overlay.to_rgb(rgb)


def test_mask_overlay_two_colours_and_untouched_background(slice_):
    original = disc(slice_.shape, 20, 20, 6)
    new = disc(slice_.shape, 40, 55, 7)
    before = slice_.copy()
    rgb = overlay.mask_overlay(slice_, original, new, opacity=0.5, zoom=2)
    assert (slice_ == before).all()  # input untouched
    assert rgb.shape == (128, 160, 3)
    # outlines in the two colours, each around its own mask
    blue = colour_pixels(rgb, overlay.ORIGINAL_RGB)
    orange = colour_pixels(rgb, overlay.NEW_RGB)
    assert blue.any() and orange.any()
    big_orig = overlay.upscale(original, 2)
    big_new = overlay.upscale(new, 2)
    assert big_orig[blue].all() and big_new[orange].all()
    # far from both masks the pixels are the plain grey slice
    far = ~(overlay.upscale(disc(slice_.shape, 20, 20, 9) | disc(slice_.shape, 40, 55, 10), 2))
    grey = overlay.to_rgb(slice_, 2)
    assert (rgb[far] == grey[far]).all()
    # fill: interior pixel is halfway between grey and the colour
    inside = rgb[80, 110].astype(int)
    expect = np.rint(0.5 * slice_[40, 55] + 0.5 * np.asarray(overlay.NEW_RGB)).astype(int)
    assert np.abs(inside - expect).max() <= 1


def test_mask_overlay_opacity_zero_draws_outlines_only(slice_):
    new = disc(slice_.shape, 30, 40, 8)
    rgb = overlay.mask_overlay(slice_, None, new, opacity=0.0)
    grey = overlay.to_rgb(slice_)
    assert (rgb[30, 40] == grey[30, 40]).all()  # centre not tinted
    assert colour_pixels(rgb, overlay.NEW_RGB).sum() > 10
    no_outline = overlay.mask_overlay(slice_, None, new, opacity=0.0, outline=False)
    assert (no_outline == grey).all()
    with pytest.raises(ValueError):
        overlay.mask_overlay(slice_, None, new, opacity=1.5)
    with pytest.raises(ValueError):
        overlay.mask_overlay(slice_, None, new[:10], opacity=0.5)


def test_lesion_outlines_highlight_and_numbers(slice_):
    mask = (disc(slice_.shape, 15, 15, 5) | disc(slice_.shape, 45, 60, 6)).astype(np.uint8)
    labels, lesions = label_lesions(mask)
    assert len(lesions) == 2
    plain = overlay.lesion_outlines(slice_, labels, highlight=None, zoom=4, numbers=False)
    chosen = overlay.lesion_outlines(slice_, labels, highlight=1, zoom=4, numbers=False)
    assert not colour_pixels(plain, overlay.NEW_RGB).any()
    orange = colour_pixels(chosen, overlay.NEW_RGB)
    ys, xs = np.nonzero(orange)
    # the highlighted outline hugs lesion 1 (centre 45, 60 at zoom 4)
    assert abs(ys.mean() / 4 - 45) < 1.5 and abs(xs.mean() / 4 - 60) < 1.5
    numbered = overlay.lesion_outlines(slice_, labels, highlight=1, zoom=4, numbers=True)
    # the numbers add coloured pixels beyond the outlines (text), and black text edges
    assert colour_pixels(numbered, overlay.ORIGINAL_RGB).sum() > colour_pixels(
        chosen, overlay.ORIGINAL_RGB).sum()
    assert (numbered != chosen).any(axis=2).sum() > 20


def test_lesion_outlines_no_lesion_is_plain_grey(slice_):
    labels = np.zeros(slice_.shape, np.int32)
    assert (overlay.lesion_outlines(slice_, labels, highlight=0) == overlay.to_rgb(slice_)).all()


def test_diff_heatmap_only_changes_light_up(slice_):
    after = slice_.copy()
    after[10:20, 10:20] = np.clip(after[10:20, 10:20].astype(int) + 50, 0, 255)
    heat = overlay.diff_heatmap(slice_, after, zoom=2)
    assert heat.shape == (128, 160, 3)
    dimmed = np.rint(slice_.astype(np.float32) * 0.35).astype(np.uint8)
    assert (heat[100, 100] == dimmed[50, 50]).all()  # unchanged: dimmed grey
    changed = heat[30, 30].astype(int)
    assert changed.sum() > 3 * int(dimmed[15, 15])  # hot colour, brighter than context
    # equal images: no heat at all
    same = overlay.diff_heatmap(slice_, slice_)
    assert (same[..., 0] == same[..., 1]).all()


def test_diff_heatmap_floor_keeps_small_changes_dark(slice_):
    after = slice_.copy()
    after[5, 5] = min(255, int(after[5, 5]) + 2)
    small = overlay.diff_heatmap(slice_, after, floor=64)
    full = overlay.diff_heatmap(slice_, after, floor=1)
    assert int(small[5, 5].sum()) < int(full[5, 5].sum())


def test_draw_marker_centred_on_pixel(slice_):
    rgb = overlay.to_rgb(slice_, 4)
    marked = overlay.draw_marker(rgb, 10, 20, zoom=4)
    assert (rgb == overlay.to_rgb(slice_, 4)).all()  # copy, input untouched
    red = colour_pixels(marked, overlay.MARKER_RGB)
    ys, xs = np.nonzero(red)
    assert abs(xs.mean() - (10 * 4 + 2)) < 1.5 and abs(ys.mean() - (20 * 4 + 2)) < 1.5


def test_draw_marker_gap_keeps_the_centre_clear(slice_):
    rgb = overlay.to_rgb(slice_, 4)
    marked = overlay.draw_marker(rgb, 10, 20, zoom=4, gap=14)
    cx, cy = 10 * 4 + 2, 20 * 4 + 2
    assert (marked[cy - 11:cy + 12, cx - 11:cx + 12] == rgb[cy - 11:cy + 12, cx - 11:cx + 12]).all()
    assert colour_pixels(marked, overlay.MARKER_RGB).any()


def test_shade_region_tints_and_outlines_only_the_region(slice_):
    region = disc(slice_.shape, 30, 40, 8)
    rgb = overlay.to_rgb(slice_, 2)
    shaded = overlay.shade_region(rgb, region, zoom=2)
    changed = np.any(shaded != rgb, axis=2)
    inside = overlay.upscale(region, 2)
    assert changed[inside].mean() > 0.9 and not changed[~inside].any()
    assert colour_pixels(shaded, overlay.VALID_RGB).any()
    with pytest.raises(ValueError, match="does not match"):
        overlay.shade_region(rgb, region[:10], zoom=2)


@given(st.integers(0, 60), st.integers(0, 70), st.integers(1, 20), st.integers(1, 20),
       st.integers(0, 10), st.integers(1, 64))
@settings(max_examples=80, deadline=None)
def test_neighbourhood_contains_bbox_and_fits(r0, c0, h, w, pad, min_size):
    shape = (64, 80)
    r1, c1 = min(r0 + h, 64), min(c0 + w, 80)
    rows, cols = overlay.neighbourhood((r0, c0, r1, c1), shape, pad=pad, min_size=min_size)
    assert 0 <= rows.start and rows.stop <= 64 and 0 <= cols.start and cols.stop <= 80
    assert rows.start <= r0 and rows.stop >= r1 and cols.start <= c0 and cols.stop >= c1
    assert rows.stop - rows.start >= min(min_size, 64)
    assert cols.stop - cols.start >= min(min_size, 80)


@given(st.integers(0, 60), st.integers(0, 70), st.integers(1, 64), st.integers(1, 80),
       st.integers(8, 48))
@settings(max_examples=80, deadline=None)
def test_neighbourhood_max_size_keeps_the_centre(r0, c0, h, w, max_size):
    shape = (64, 80)
    r1, c1 = min(r0 + h, 64), min(c0 + w, 80)
    rows, cols = overlay.neighbourhood((r0, c0, r1, c1), shape, pad=6, min_size=8, max_size=max_size)
    for window, lo, hi, n in ((rows, r0, r1, 64), (cols, c0, c1, 80)):
        assert 0 <= window.start and window.stop <= n
        assert window.stop - window.start <= max_size
        assert window.start <= (lo + hi) // 2 < window.stop
        if hi - lo + 12 <= max_size:  # small enough: the whole bbox with its pad
            assert window.start <= lo and window.stop >= hi


def test_mask_bbox():
    m = np.zeros((10, 12), bool)
    assert overlay.mask_bbox(m) is None
    m[2:5, 3:9] = True
    assert overlay.mask_bbox(m) == (2, 3, 5, 9)


def test_zoom_overlay_is_a_close_up(slice_):
    new = disc(slice_.shape, 30, 40, 4)
    close = overlay.zoom_overlay(slice_, None, new, pad=6, min_size=16, display=200)
    assert close.shape[0] >= 150 and close.shape[0] == close.shape[1]
    assert colour_pixels(close, overlay.NEW_RGB).any()
    whole = overlay.zoom_overlay(slice_, None, np.zeros_like(new))
    assert whole.shape[:2] == tuple(s * overlay.fit_zoom(slice_.shape, 256, max_zoom=12)
                                    for s in slice_.shape)


def test_density_map_hot_where_points_are():
    bg = np.full((50, 60), 100, np.uint8)
    dens = overlay.density_map([(10, 40)] * 5 + [(50, 5), (500, 500)], (50, 60), background=bg,
                               sigma=2.0)
    assert dens.shape == (50, 60, 3)
    hot = dens.astype(int).sum(axis=2)
    assert hot[40, 10] > hot[25, 30]  # the cluster beats empty brain
    assert (dens[25, 30] == 60).all()  # empty: dimmed background only
    empty = overlay.density_map([], (5, 6))
    assert (empty == 0).all()


def test_png_bytes_round_trip(slice_):
    grey = cv2.imdecode(np.frombuffer(overlay.png_bytes(slice_), np.uint8), cv2.IMREAD_UNCHANGED)
    assert (grey == slice_).all()
    rgb = overlay.mask_overlay(slice_, None, disc(slice_.shape, 30, 30, 5), opacity=0.4)
    data = overlay.png_bytes(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                        cv2.COLOR_BGR2RGB)
    assert (back == rgb).all()  # lossless, channel order kept
    with pytest.raises(ValueError):
        overlay.png_bytes(slice_.astype(np.float32))
    with pytest.raises(ValueError):
        overlay.png_bytes(np.zeros((4, 4, 2), np.uint8))
