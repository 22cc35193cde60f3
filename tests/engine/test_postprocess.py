"""DB post-processing on synthetic probability maps (no model weights involved)."""

import numpy as np

from ocrpipe.engine.detect.postprocess import DBParams, boxes_from_map, order_quad, unclip


def _map(shape, rects, value=0.9):
    prob = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in rects:
        prob[y0:y1, x0:x1] = value
    return prob


def test_one_rectangle_becomes_one_expanded_quad():
    prob = _map((100, 200), [(40, 40, 160, 60)])
    quads, scores = boxes_from_map(prob, (200, 100), DBParams(unclip_ratio=1.5))
    assert quads.shape == (1, 4, 2)
    assert 0.8 < scores[0] <= 0.9  # mean probability inside the (dilated) contour
    x0, y0 = quads[0].min(0)
    x1, y1 = quads[0].max(0)
    # Unclip expands by area*ratio/perimeter = 120*20*1.5/280 ≈ 12.9 px on each side.
    assert x0 < 40 - 8 and x1 > 160 + 8 and y0 < 40 - 8 and y1 > 60 + 8
    assert x0 > 40 - 18 and x1 < 160 + 18


def test_boxes_are_scaled_to_destination_size():
    prob = _map((100, 200), [(40, 40, 160, 60)])
    small, _ = boxes_from_map(prob, (200, 100))
    big, _ = boxes_from_map(prob, (400, 200))
    np.testing.assert_allclose(big, np.clip(small * 2, 0, [399, 199]), atol=1.0)


def test_low_score_and_tiny_regions_are_dropped():
    prob = _map((100, 200), [(10, 10, 100, 30)], value=0.35)  # above thresh, below box_thresh
    prob[70:72, 150:152] = 0.95  # 2x2 speck below min_size
    quads, _ = boxes_from_map(prob, (200, 100), DBParams(thresh=0.3, box_thresh=0.5, min_size=3))
    assert len(quads) == 0


def test_separate_lines_stay_separate_and_are_clockwise():
    prob = _map((200, 300), [(20, 20, 280, 40), (20, 100, 200, 120), (20, 160, 120, 180)])
    quads, _ = boxes_from_map(prob, (300, 200), DBParams(unclip_ratio=1.2))
    assert len(quads) == 3
    for q in quads:
        tl, tr, br, bl = q
        assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]


def test_empty_map_gives_no_boxes():
    quads, scores = boxes_from_map(np.zeros((64, 64), np.float32), (64, 64))
    assert quads.shape == (0, 4, 2) and scores.shape == (0,)


def test_rotated_region_gives_rotated_quad():
    import cv2

    prob = np.zeros((200, 200), np.float32)
    rect = ((100, 100), (140, 20), 20.0)
    cv2.fillPoly(prob, [cv2.boxPoints(rect).astype(np.int32)], 0.9)
    quads, _ = boxes_from_map(prob, (200, 200), DBParams(unclip_ratio=1.0))
    assert len(quads) == 1
    tl, tr, _, _ = quads[0]
    angle = np.degrees(np.arctan2(tr[1] - tl[1], tr[0] - tl[0]))
    assert abs(abs(angle) - 20) < 3


def test_order_quad_from_any_start():
    pts = np.array([[10, 50], [10, 10], [90, 10], [90, 50]], np.float32)
    np.testing.assert_array_equal(order_quad(pts), [[10, 10], [90, 10], [90, 50], [10, 50]])


def test_unclip_degenerate_polygon():
    assert unclip(np.zeros((4, 2), np.float32), 1.5) is None
