"""A small synthetic benchmark of logical and structural anomalies, in MVTec LOCO's layout.

It is the embedded default of the book: every chapter can run on it on any
machine, without downloading anything. Its object categories come in two tiers:

- **LOCO-like** (``LOCO_LIKE_CATEGORIES``, with the texture): five objects
  modelled on MVTec LOCO's five, whose rules have few valid global
  configurations (``CONFIGURATIONS``, at most six), each seen many times in a
  training set, and are carried by large parts;
- **hard** (``HARD_CATEGORIES``): four objects whose rules draw from thousands
  of valid configurations, so that a memory of patches and a model of the
  whole image alike are at chance on them.

============  ============================================  ========================================
category      rule of a normal image                        logical anomalies (``RULES``; mask)
============  ============================================  ========================================
drink_bottle  the liquid's colour is the label's fruit      mismatch (the label's fruit panel)
lunch_box     2 oranges + 1 banana; ~60 % granola           missing, swapped, mix
pin_tray      one pin in each of four compartments          missing, surplus (the compartment)
bolt_kit      a column each of 2 bolts, 2 nuts, 2 washers   missing, surplus, swapped
wire_splice   both connectors have k slots; cable says k    mismatch (connector), colour (cable)
brick_wall    bricks run vertically (texture)               turned (the patch)
pegboard      each column's bottom peg = its top peg        mismatch (both wells)
fruit_tray    as many nuts as oranges (1-3)                 missing, surplus (the compartment)
cable_pair    both connectors have k slots; cable says k    mismatch, colour, missing
bead_string   the last three beads repeat the first three   mismatch, reversed (each broken pair)
============  ============================================  ========================================

In every object category each part of a logical anomaly also occurs in
normal images; only the combination or the count is new, and ``rule_holds``
decides it from the scene's facts. Structural anomalies are local damage on
an item (or anywhere on the texture): scratches, cracks, holes, stains and
deformations. Normal images also vary in position, rotation, lighting and
noise, so that no single template explains them. docs/synthetic.md describes
each category and measures how hard it is.

Scenes are drawn with PIL at twice the image size and averaged down, which
antialiases edges and masks alike. Every image has its own random generator
(``image_rng``), seeded by (seed, category, split, index), so a category or a
split can be regenerated on its own, and the same seed always gives the same bytes.
"""
from __future__ import annotations

import collections
import functools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from .errors import DataError

# Raised whenever the same seed draws other images of a category that exists, so that a copy made by an
# older generator is made again (a new category changes no other's images, so it does not raise it).
# 2: rules that relate distant parts; larger defects on small items. Still 2: the LOCO-like categories.
GENERATOR_VERSION = 2
STAMP_FILE = ".synthetic.json"  # in each category folder: the generator version, seed, size and counts that made it
# Five object categories modelled on MVTec LOCO's and one texture: the benchmark's headline.
LOCO_LIKE_CATEGORIES = ("drink_bottle", "lunch_box", "pin_tray", "bolt_kit", "wire_splice", "brick_wall")
# Objects whose rules draw from thousands of valid configurations: no model learns them from
# 100-200 images (docs/synthetic.md measures it). A separate tier, outside the headline means.
HARD_CATEGORIES = ("pegboard", "fruit_tray", "cable_pair", "bead_string")
SYNTHETIC_CATEGORIES = LOCO_LIKE_CATEGORIES + HARD_CATEGORIES
# Each category's part of every image's seed: fixed, so that adding a category changes no other's images.
_SEED_CODES = {"pegboard": 0, "fruit_tray": 1, "cable_pair": 2, "bead_string": 3, "brick_wall": 4,
               "drink_bottle": 5, "lunch_box": 6, "pin_tray": 7, "bolt_kit": 8, "wire_splice": 9}
SUPERSAMPLE = 2  # draw at twice the size, then average 2 x 2 blocks
MIN_MASK_PIXELS = 4  # a structural defect smaller than this (at the output size) is drawn again
MIN_IMAGE_SIZE = 32  # below this the items are a few pixels wide


# ---------------------------------------------------------------------------
# Geometry: shapes live in scene coordinates, the unit square centred at 0.

@dataclass
class Shape:
    """A filled polygon, or an open polyline when ``width`` > 0 (scene units)."""

    points: np.ndarray  # (N, 2)
    fill: tuple
    width: float = 0.0


@dataclass
class Scene:
    """What an object category draws: shapes in order, rule-breaking regions, damage sites."""

    background: tuple
    shapes: list[Shape]
    regions: list[list[Shape]] = field(default_factory=list)  # one mask per region (LOCO: one per defect)
    sites: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (centre, radius) of items
    facts: dict = field(default_factory=dict)  # what the rule is about: colours, counts, slots
    # how far the whole layout may turn (radians), shift (scene units) and scale: the camera's play
    pose: tuple = (0.1, 0.03, (0.95, 1.02))


def _rotate(points, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.asarray(points, dtype=float) @ np.array([[c, s], [-s, c]])


def _ellipse(centre, rx: float, ry: float, angle: float = 0.0, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return _rotate(np.stack([rx * np.cos(t), ry * np.sin(t)], 1), angle) + centre


def _polygon(centre, radius: float, sides: int, angle: float) -> np.ndarray:
    return _ellipse(centre, radius, radius, angle, n=sides)


def _rect(centre, w: float, h: float, angle: float = 0.0) -> np.ndarray:
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return _rotate(corners, angle) + centre


def _bezier(p0, p1, p2, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * t * (1 - t) * np.asarray(p1) + t ** 2 * np.asarray(p2)


def _jitter(colour, rng, amount: float = 12) -> tuple:
    return tuple(int(c) for c in np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0, 255))


def _shade(colour, factor: float) -> tuple:
    return tuple(int(min(255, c * factor)) for c in colour)


def _ball(centre, radius: float, colour, rng) -> list[Shape]:
    """A round item with a highlight towards the light (top left), as every ball in the scenes."""
    highlight = np.asarray(centre) + radius * np.array([-0.35, -0.35])
    return [Shape(_ellipse(centre, radius, radius), colour),
            Shape(_ellipse(highlight, radius * 0.3, radius * 0.22, rng.uniform(0, np.pi)), _shade(colour, 1.25))]


# ---------------------------------------------------------------------------
# The hard tier. Each rule relates parts of the scene that lie far
# apart, and normal images draw every part at random within the rule, so that a
# broken rule leaves each part, and each neighbourhood, as it appears in normal
# images: only the combination is new.

PEG_COLOURS = {"yellow": (235, 190, 45), "blue": (60, 115, 215)}


def _pegboard(rng, rule: str | None) -> Scene:
    """Rule: in each of the 4 columns of wells, the bottom peg has the colour of the top peg.

    The two middle rows are free, so every peg and every neighbourhood of pegs
    occurs in normal images; a broken pair is three wells apart.
    """
    board = _jitter((196, 160, 110), rng)
    wells = [[np.array([0.2 * (col - 1.5), 0.2 * (row - 1.5)]) for col in range(4)] for row in range(4)]
    colours = [list(rng.choice(list(PEG_COLOURS), 4)) for _ in range(4)]
    colours[3] = list(colours[0])
    regions = []
    if rule == "mismatch":  # one pair: the top or the bottom peg takes the other colour
        col, row = rng.integers(4), (0, 3)[rng.integers(2)]
        colours[row][col] = "blue" if colours[row][col] == "yellow" else "yellow"
        regions = [[Shape(_rect(wells[0][col], 0.17, 0.17), 255), Shape(_rect(wells[3][col], 0.17, 0.17), 255)]]
    shapes = [Shape(_rect((0, 0), 0.88, 0.88), board)]
    sites = []
    for row in range(4):
        for col in range(4):
            shapes.append(Shape(_rect(wells[row][col], 0.16, 0.16), _shade(board, 0.7)))
            peg = _jitter(PEG_COLOURS[colours[row][col]], rng, 8)
            centre = wells[row][col] + rng.uniform(-0.02, 0.02, 2)
            shapes += _ball(centre, 0.05, peg, rng)
            # an off-centre dimple shows each peg's rotation
            dimple = centre + _rotate([[0.025, 0]], rng.uniform(0, 2 * np.pi))[0]
            shapes.append(Shape(_ellipse(dimple, 0.01, 0.01), _shade(peg, 0.6)))
            sites.append((centre, 0.065))  # defects reach past the peg into its well
    facts = {"top": colours[0], "bottom": colours[3]}
    return Scene(_jitter((70, 70, 75), rng), shapes, regions, sites, facts)


def _fruit_tray(rng, rule: str | None) -> Scene:
    """Rule: the right compartment holds as many nuts as the left one holds oranges (1, 2 or 3).

    Each compartment has four places and the items take any of them, so each
    compartment on its own looks normal whatever the anomaly: only the two counts
    disagree. The oranges are the reference: the anomaly is a nut too few or too
    many, and its mask is the right compartment.
    """
    left, right = np.array([-0.22, 0.0]), np.array([0.22, 0.0])
    places = [(x, y) for y in (-0.15, 0.15) for x in (-0.09, 0.09)]
    k = int(rng.integers(*{"missing": (2, 4), "surplus": (1, 3)}.get(rule, (1, 4))))  # counts stay in 1..3
    oranges = [left + places[i] for i in rng.permutation(4)[:k]]
    order = rng.permutation(4)
    n_nuts, regions = k, []
    if rule in ("missing", "surplus"):
        n_nuts = k - 1 if rule == "missing" else k + 1
        # no nut is the wrong one, the count of the compartment is
        regions = [[Shape(_rect(right, 0.38, 0.62), 255)]]
    nuts = [right + places[i] for i in order[:n_nuts]]
    tray = _jitter((175, 185, 195), rng, 8)
    shapes = [Shape(_rect((0, 0), 0.9, 0.72), tray),
              Shape(_rect(left, 0.38, 0.62), _shade(tray, 0.85)), Shape(_rect(right, 0.38, 0.62), _shade(tray, 0.85))]
    sites = []
    orange, nut = _jitter((240, 140, 30), rng, 10), _jitter((140, 95, 55), rng, 10)
    for slot in oranges:
        centre = slot + rng.uniform(-0.01, 0.01, 2)
        shapes += _ball(centre, 0.075, orange, rng)
        leaf = centre + _rotate([[0.05, 0]], rng.uniform(0, 2 * np.pi))[0]
        shapes.append(Shape(_ellipse(leaf, 0.018, 0.009, rng.uniform(0, np.pi)), (60, 120, 40)))
        sites.append((centre, 0.075))
    for slot in nuts:
        centre, angle = slot + rng.uniform(-0.012, 0.012, 2), rng.uniform(0, np.pi)
        shapes.append(Shape(_ellipse(centre, 0.075, 0.05, angle), nut))
        shapes.append(Shape(_rotate([[-0.06, 0], [0.06, 0]], angle) + centre, _shade(nut, 0.6), 0.006))
        sites.append((centre, 0.065))
    return Scene(_jitter((60, 58, 55), rng), shapes, regions, sites, {"oranges": len(oranges), "nuts": len(nuts)})


CABLE_COLOURS = {2: (230, 200, 40), 3: (40, 90, 210), 4: (210, 50, 40)}


def _cable_pair(rng, rule: str | None) -> Scene:
    """Rule: both connectors have the same number k of slots; the cable's colour encodes k.

    k is 2, 3 or 4 at random, so every connector and every cable colour occurs
    in normal images; an anomaly pairs parts that never go together.
    """
    k = int(rng.integers(2, 5))
    k_right, colour_k, cable_present = k, k, True
    if rule == "mismatch":
        k_right = int(rng.choice([n for n in CABLE_COLOURS if n != k]))
    elif rule == "colour":
        colour_k = int(rng.choice([n for n in CABLE_COLOURS if n != k]))
    elif rule == "missing":
        cable_present = False
    colour = _jitter(CABLE_COLOURS[colour_k], rng, 10)
    centres = [np.array([-0.3, rng.uniform(-0.1, 0.1)]), np.array([0.3, rng.uniform(-0.1, 0.1)])]
    angles = rng.uniform(-0.2, 0.2, 2)
    ends = [c + _rotate([[side * 0.07, 0]], a)[0] for c, a, side in zip(centres, angles, (1, -1))]
    middle = (ends[0] + ends[1]) / 2 + (0, rng.choice([-1, 1]) * rng.uniform(0.1, 0.25))
    cable = _bezier(ends[0], middle, ends[1])
    shapes = [Shape(cable, colour, 0.03)] if cable_present else []
    housing = _jitter((225, 225, 215), rng, 8)
    for centre, angle, slots in zip(centres, angles, (k, k_right)):
        shapes.append(Shape(_rect(centre, 0.14, 0.26, angle), housing))
        for i in range(slots):
            offset = _rotate([[0.0, 0.24 * ((i + 1) / (slots + 1) - 0.5)]], angle)[0]
            shapes.append(Shape(_rect(centre + offset, 0.06, 0.028, angle), (45, 45, 50)))
    regions = {"mismatch": [[Shape(_rect(centres[1], 0.15, 0.27, angles[1]), 255)]],
               "colour": [[Shape(cable, 255, 0.036)]], "missing": [[Shape(cable, 255, 0.036)]]}.get(rule, [])
    sites = [(centres[0], 0.12), (centres[1], 0.12)] + ([(cable[16], 0.05)] if cable_present else [])
    facts = {"left slots": k, "right slots": k_right, "cable": colour_k if cable_present else None}
    return Scene(_jitter((85, 90, 95), rng), shapes, regions, sites, facts)


BEAD_COLOURS = [(210, 40, 40), (240, 140, 20), (235, 210, 40), (50, 160, 70), (40, 90, 200)]


def _bead_string(rng, rule: str | None) -> Scene:
    """Rule: six beads on a string, and the last three repeat the colours of the first three, in order.

    The first three colours are drawn at random, so any bead next to any other
    occurs in normal images; a broken repeat pairs beads three places apart.
    """
    string = _bezier((-0.49, 0), (0, rng.uniform(-0.12, 0.12)), (0.49, 0), n=48)
    first = list(rng.integers(len(BEAD_COLOURS), size=3))
    colours = first + first
    if rule == "mismatch":  # one bead of the repeat takes another colour
        i = 3 + int(rng.integers(3))
        colours[i] = int(rng.choice([c for c in range(len(BEAD_COLOURS)) if c != colours[i]]))
    elif rule == "reversed":  # the repeat runs backwards, so its two outer beads are out of place
        while first[0] == first[2]:
            first = list(rng.integers(len(BEAD_COLOURS), size=3))
        colours = first + first[::-1]
    shapes = [Shape(string, (60, 50, 40), 0.008)]
    centres = []
    for t in np.linspace(0.07, 0.93, 6) + rng.uniform(-0.006, 0.006, 6):
        centres.append(string[int(round(t * (len(string) - 1)))])
    sites = []
    for centre, colour in zip(centres, colours):
        bead = _jitter(BEAD_COLOURS[colour], rng, 10)
        # hexagonal beads, each turned at random, so that rotation varies item by item
        shapes.append(Shape(_polygon(centre, 0.07, 6, rng.uniform(0, np.pi)), bead))
        shapes.append(Shape(_ellipse(centre + (-0.022, -0.022), 0.017, 0.011, 0.8), _shade(bead, 1.3)))
        sites.append((centre, 0.085))  # defects reach past the bead onto the string
    # a broken pair marks both of its beads: neither alone is wrong
    broken = [i for i in range(3) if colours[i] != colours[i + 3]]
    regions = [[Shape(_ellipse(centres[i], 0.076, 0.076), 255), Shape(_ellipse(centres[i + 3], 0.076, 0.076), 255)]
               for i in broken]
    return Scene(_jitter((225, 220, 205), rng), shapes, regions, sites, {"colours": colours})


# ---------------------------------------------------------------------------
# The LOCO-like object categories. Each is modelled on one of MVTec LOCO's five:
# a rule with few valid global configurations (at most six), each seen many
# times in a training set, carried by large parts (a liquid, a label, whole
# items, a compartment's contents), while each part alone looks as in normal
# images. ``facts["configuration"]`` names the configuration a normal scene
# shows: what the rule fixes together with the discrete choices it leaves free.

# LOCO's objects lie in fixtures under a fixed camera: the whole layout turns by at most 1.7 degrees and
# shifts by 1.2 % (the hard tier: 5.7 degrees, 3 %). Items still move on their own.
FIXTURE_POSE = (0.03, 0.012, (0.99, 1.01))
JUICES = {"orange": (240, 140, 30), "cherry": (175, 25, 50), "lime": (140, 195, 45)}
PANELS = {"orange": (250, 215, 160), "cherry": (240, 175, 190), "lime": (210, 235, 170)}  # each label's tint


def _fruit_icon(fruit: str, centre, rng) -> list[Shape]:
    """The label's picture of a fruit, about 0.2 wide: one orange, two cherries or a lime slice."""
    centre = np.asarray(centre)
    if fruit == "orange":
        leaf = Shape(_ellipse(centre + (0.035, -0.09), 0.035, 0.016, -0.5), (60, 130, 40))
        return _ball(centre, 0.09, JUICES["orange"], rng) + [leaf]
    if fruit == "cherry":
        stems = [Shape(np.array([centre + (dx, -0.01), centre + (0.01, -0.1)]), (70, 110, 40), 0.01)
                 for dx in (-0.05, 0.05)]
        return stems + _ball(centre + (-0.05, 0.025), 0.052, JUICES["cherry"], rng) \
            + _ball(centre + (0.05, 0.025), 0.052, JUICES["cherry"], rng)
    rind, flesh = JUICES["lime"], _shade(JUICES["lime"], 1.25)
    return [Shape(_ellipse(centre, 0.09, 0.09), rind), Shape(_ellipse(centre, 0.074, 0.074), flesh)] + [
        Shape(np.array([centre, centre + 0.068 * np.array([np.cos(a), np.sin(a)])]), rind, 0.007)
        for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]


def _drink_bottle(rng, rule: str | None) -> Scene:
    """Rule (LOCO's juice bottle): the liquid's colour is the fruit of the label.

    Three fruits, so three configurations. The liquid fills the upper body; the
    label's lower half, tinted and pictured by its fruit, lies below a white
    band of print: the two parts the rule pairs are apart, each as in normal images.
    """
    fruits = list(JUICES)
    liquid = fruits[rng.integers(3)]
    label, fill = liquid, -0.16 + rng.uniform(-0.01, 0.01)  # the liquid's surface; the body spans -0.3 to 0.46
    regions = []
    if rule == "mismatch":  # the label shows another fruit: the label's fruit panel is what is wrong
        label = fruits[(fruits.index(liquid) + rng.integers(1, 3)) % 3]
        regions = [[Shape(_rect((0, 0.365), 0.36, 0.19), 255)]]
    glass = _jitter((205, 220, 225), rng, 8)
    juice = _jitter(JUICES[liquid], rng, 10)
    shapes = [Shape(np.array([(-0.18, -0.3), (0.18, -0.3), (0.07, -0.38), (-0.07, -0.38)]), glass),
              Shape(_rect((0, -0.41), 0.14, 0.06), glass),
              Shape(_rect((0, -0.46), 0.17, 0.05), _jitter((230, 230, 230), rng, 10)),  # the cap
              Shape(_rect((0, 0.08), 0.36, 0.76), glass),
              Shape(_rect((0, (fill + 0.44) / 2), 0.33, 0.44 - fill), juice),
              Shape(np.array([(-0.16, fill), (0.16, fill)]), _shade(juice, 1.3), 0.008),  # the meniscus
              Shape(_rect((0, 0.25), 0.36, 0.42), _jitter((245, 240, 228), rng, 6)),  # the label
              Shape(_rect((0, 0.365), 0.36, 0.19), _jitter(PANELS[label], rng, 6))]  # its fruit panel
    for y in (0.09, 0.135, 0.18):  # lines of print of any length
        length = rng.uniform(0.12, 0.28)
        shapes.append(Shape(np.array([(-length / 2, y), (length / 2, y)]), (90, 90, 95), 0.012))
    shapes += _fruit_icon(label, (rng.uniform(-0.015, 0.015), 0.37), rng)
    sites = [(np.array([0, -0.2]), 0.1), (np.array([0, 0.37]), 0.09), (np.array([0, -0.42]), 0.06)]
    facts = {"liquid": liquid, "label": label, "configuration": liquid}
    return Scene(_jitter((115, 125, 135), rng), shapes, regions, sites, facts, pose=FIXTURE_POSE)

def _lunch_box(rng, rule: str | None) -> Scene:
    """Rule (LOCO's breakfast box): two oranges and one banana on the left, in a row of four places
    with a free place at one end; granola over chips on the right, the granola taking about 60 %.

    The free place is the top or the bottom one and the banana any of the three
    fruits: six configurations.
    """
    left, right = np.array([-0.22, 0.0]), np.array([0.22, 0.0])
    places = [left + (rng.uniform(-0.04, 0.04), y) for y in (-0.27, -0.09, 0.09, 0.27)]
    free = (0, 3)[rng.integers(2)]
    filled = [i for i in range(4) if i != free]
    fruit = {i: "orange" for i in filled}
    fruit[filled[rng.integers(3)]] = "banana"
    configuration = f"free place {free}, banana in place {[i for i in filled if fruit[i] == 'banana'][0]}"
    boundary = 0.1 + rng.uniform(-0.015, 0.015)  # granola above, chips below
    def outline(place):  # of the fruit that lies, or would lie, in a place
        if fruit[place] == "orange":
            return Shape(_ellipse(places[place], 0.095, 0.095), 255)
        return Shape(_ellipse(places[place] + (0, 0.03), 0.16, 0.075), 255)

    regions = []
    if rule == "missing":  # one fruit is not there: mark where it would lie
        gone = filled[rng.integers(3)]
        regions = [[outline(gone)]]
        del fruit[gone]
    elif rule == "swapped":  # an orange is a banana: two bananas, one orange
        swap = int(rng.choice([i for i in filled if fruit[i] == "orange"]))
        fruit[swap] = "banana"
        regions = [[outline(swap)]]
    elif rule == "mix":  # mostly chips: the chips where granola belongs are marked
        wrong = boundary
        boundary = -0.06 + rng.uniform(-0.015, 0.015)
        regions = [[Shape(_rect(right + (0, (boundary + wrong) / 2), 0.38, wrong - boundary), 255)]]
    box = _jitter((205, 210, 215), rng, 8)
    shapes = [Shape(_rect((0, 0), 0.94, 0.86), box), Shape(_rect(left, 0.4, 0.78), _shade(box, 0.88)),
              Shape(_rect(right + (0, (boundary - 0.39) / 2), 0.4, boundary + 0.39), _jitter((160, 110, 60), rng, 8)),
              Shape(_rect(right + (0, (boundary + 0.39) / 2), 0.4, 0.39 - boundary), _jitter((235, 210, 140), rng, 8))]
    for _ in range(40):  # granola clusters and chips, scattered: their places are free
        y = rng.uniform(-0.37, 0.37)
        centre = right + (rng.uniform(-0.18, 0.18), y)
        if y < boundary - 0.02:
            shapes.append(Shape(_ellipse(centre, 0.02, 0.014, rng.uniform(0, np.pi), n=10), (110, 70, 35)))
        elif y > boundary + 0.02:
            shapes.append(Shape(_ellipse(centre, 0.03, 0.03, n=16), (215, 180, 100), 0.006))
    sites = [(right + (0, -0.2), 0.1), (right + (0, 0.25), 0.1)]
    orange, banana = _jitter((240, 140, 30), rng, 10), _jitter((240, 215, 70), rng, 10)
    for place, kind in sorted(fruit.items()):
        centre = places[place] + rng.uniform(-0.01, 0.01, 2)
        if kind == "orange":
            shapes += _ball(centre, 0.085, orange, rng)
        else:  # a curved banana lying across its place, tips darker
            arc = np.linspace(np.pi * 0.2, np.pi * 0.8, 12) + rng.uniform(-0.1, 0.1)
            curve = centre + (0, -0.1) + 0.16 * np.stack([np.cos(arc), np.sin(arc)], 1)
            shapes += [Shape(curve, banana, 0.07), Shape(curve[:2], (90, 70, 30), 0.04), Shape(curve[-2:], (90, 70, 30), 0.04)]
        sites.append((centre, 0.095))  # defects reach past the fruit onto the floor
    kinds = list(fruit.values())
    facts = {"oranges": kinds.count("orange"), "bananas": kinds.count("banana"),
             "granola": bool(boundary > 0), "configuration": configuration}
    return Scene(_jitter((60, 58, 55), rng), shapes, regions, sites, facts, pose=FIXTURE_POSE)

def _pin_tray(rng, rule: str | None) -> Scene:
    """Rule (LOCO's pushpins): each of the four compartments holds exactly one pin, anywhere in it.

    One configuration; pins move freely inside their compartments, so an
    empty stretch of floor is normal, and a pin is a pin wherever it lies.
    """
    compartments = [np.array([x, y]) for y in (-0.22, 0.22) for x in (-0.22, 0.22)]
    counts = [1, 1, 1, 1]
    regions = []
    if rule in ("missing", "surplus"):
        odd = int(rng.integers(4))
        counts[odd] = 0 if rule == "missing" else 2
        regions = [[Shape(_rect(compartments[odd], 0.4, 0.4), 255)]]  # the count is wrong, no pin is
    tray = _jitter((70, 75, 85), rng, 8)
    shapes = [Shape(_rect((0, 0), 0.94, 0.94), tray)]
    shapes += [Shape(_rect(c, 0.4, 0.4), _shade(tray, 1.35)) for c in compartments]
    sites = []
    for centre, count in zip(compartments, counts):
        spots = rng.uniform(-0.11, 0.11, (count, 2))
        while count == 2 and np.hypot(*(spots[0] - spots[1])) < 0.22:  # two pins lie apart, never touching
            spots = rng.uniform(-0.11, 0.11, (2, 2))
        for spot in spots:
            spot = centre + spot
            needle = spot + _rotate([[0.085, 0]], rng.uniform(0, 2 * np.pi))[0]
            shapes.append(Shape(np.array([spot, needle]), (190, 190, 200), 0.012))
            shapes += _ball(spot, 0.062, _jitter((235, 195, 50), rng, 10), rng)
            sites.append((spot, 0.07))
    facts = {"pins": counts, "configuration": "one pin each"}
    return Scene(_jitter((40, 40, 45), rng), shapes, regions, sites, facts, pose=FIXTURE_POSE)


def _bolt(centre, angle: float, metal) -> list[Shape]:
    """A bolt standing upright about ``centre``: a hexagonal head above a threaded shaft."""
    head = _polygon((0, -0.09), 0.05, 6, 0.0)
    shaft = np.array([[-0.02, -0.07], [0.02, -0.07], [0.02, 0.11], [-0.02, 0.11]])
    threads = [Shape(_rotate(np.array([[-0.02, y], [0.02, y + 0.01]]), angle) + centre, _shade(metal, 0.7), 0.005)
               for y in np.arange(-0.03, 0.11, 0.025)]
    return [Shape(_rotate(shaft, angle) + centre, metal), Shape(_rotate(head, angle) + centre, metal)] + threads


KIT_COLOURS = {"bolt": (170, 172, 180), "nut": (95, 95, 105), "washer": (205, 160, 70)}  # steel, dark, brass
KIT_ORDERS = (("bolt", "nut", "washer"), ("nut", "washer", "bolt"), ("washer", "bolt", "nut"))


def _bolt_kit(rng, rule: str | None) -> Scene:
    """Rule (LOCO's screw bag): two bolts, two nuts and two washers, a column of each, in two of the
    card's three rows.

    The columns' order turns (bolts, nuts, washers from the left, or the next
    turn of it) and the free row is the top or the bottom one: six
    configurations. An empty slot is normal, so a missing item leaves nothing
    a patch has not seen.
    """
    order = KIT_ORDERS[rng.integers(3)]
    free = (0, 2)[rng.integers(2)]
    places = {(column, row): np.array([0.3 * (column - 1), 0.29 * (row - 1)]) + rng.uniform(-0.015, 0.015, 2)
              for column in range(3) for row in range(3)}
    items = {(column, row): order[column] for column in range(3) for row in range(3) if row != free}
    outline = {"bolt": lambda c: _ellipse(c, 0.08, 0.14), "nut": lambda c: _ellipse(c, 0.095, 0.095),
               "washer": lambda c: _ellipse(c, 0.095, 0.095)}
    regions = []
    column, row = int(rng.integers(3)), 1 + (1 - free) * int(rng.integers(2))  # a filled slot of a column
    if rule == "missing":  # mark where the item would lie
        regions = [[Shape(outline[items[column, row]](places[column, row]), 255)]]
        del items[column, row]
    elif rule == "surplus":  # one item too many, in the free slot of its column
        items[column, free] = order[column]
        regions = [[Shape(outline[order[column]](places[column, free]), 255)]]
    elif rule == "swapped":  # a nut is a bolt: three bolts, one nut
        column = order.index("nut")
        items[column, row] = "bolt"
        regions = [[Shape(outline["bolt"](places[column, row]), 255)]]
    colours = {kind: _jitter(colour, rng, 10) for kind, colour in KIT_COLOURS.items()}
    card = _jitter((232, 228, 218), rng, 6)
    shapes = [Shape(_rect((0, 0), 0.96, 0.96), card)]
    sites = []
    for slot, kind in sorted(items.items()):
        centre = places[slot]
        if kind == "bolt":
            shapes += _bolt(centre, rng.uniform(-0.15, 0.15), colours["bolt"])
        elif kind == "nut":
            shapes += [Shape(_polygon(centre, 0.075, 6, rng.uniform(0, np.pi)), colours["nut"]),
                       Shape(_ellipse(centre, 0.032, 0.032), card)]
        else:
            shapes += [Shape(_ellipse(centre, 0.08, 0.08), colours["washer"]),
                       Shape(_ellipse(centre, 0.034, 0.034), card)]
        sites.append((centre, 0.1))  # defects reach past the item onto the card
    kinds = list(items.values())
    facts = {"bolts": kinds.count("bolt"), "nuts": kinds.count("nut"), "washers": kinds.count("washer"),
             "configuration": f"{' '.join(order)}, free row {free}"}
    return Scene(_jitter((70, 75, 80), rng), shapes, regions, sites, facts, pose=FIXTURE_POSE)

SPLICE_COLOURS = {2: (230, 200, 40), 3: (40, 90, 210), 5: (210, 50, 40)}


def _splice_connector(centre, slots: int, side: int, housing) -> list[Shape]:
    """A lever connector as tall as its ``slots`` (2, 3 or 5): an orange lever per slot on its outer edge."""
    height = 0.12 * slots + 0.04
    shapes = [Shape(_rect(centre, 0.2, height), housing)]
    for i in range(slots):
        y = 0.12 * (i + 0.5 - slots / 2)
        shapes.append(Shape(_rect(centre + (side * 0.05, y), 0.08, 0.09), (235, 120, 30)))
        shapes.append(Shape(_ellipse(centre + (side * 0.05, y), 0.014, 0.014), (40, 40, 45)))
    return shapes


def _wire_splice(rng, rule: str | None) -> Scene:
    """Rule (LOCO's splicing connectors): both connectors have k slots (2, 3 or 5), which sets their
    size, and the cable's colour says k (2 yellow, 3 blue, 5 red).

    The cable bows up or down: six configurations. The levers lie on the
    connectors' outer edges and the cable leaves from their inner edges.
    """
    k = int(rng.choice(list(SPLICE_COLOURS)))
    k_right, colour_k = k, k
    if rule == "mismatch":
        k_right = int(rng.choice([n for n in SPLICE_COLOURS if n != k]))
    elif rule == "colour":
        colour_k = int(rng.choice([n for n in SPLICE_COLOURS if n != k]))
    bow = int(rng.choice([-1, 1]))
    centres = [np.array([-0.34, rng.uniform(-0.03, 0.03)]), np.array([0.34, rng.uniform(-0.03, 0.03)])]
    ends = [centres[0] + (0.09, 0), centres[1] - (0.09, 0)]
    middle = (ends[0] + ends[1]) / 2 + (0, bow * rng.uniform(0.26, 0.3))
    cable = _bezier(ends[0], middle, ends[1])
    housing = _jitter((225, 225, 218), rng, 8)
    shapes = [Shape(cable, _jitter(SPLICE_COLOURS[colour_k], rng, 10), 0.09)]
    # grey sleeves, alike on every cable, keep its colour away from the connectors
    shapes += [Shape(cable[:7], (120, 120, 125), 0.105), Shape(cable[-7:], (120, 120, 125), 0.105)]
    shapes += _splice_connector(centres[0], k, -1, housing) + _splice_connector(centres[1], k_right, 1, housing)
    regions = {"mismatch": [[Shape(_rect(centres[1], 0.21, 0.12 * k_right + 0.05), 255)]],
               "colour": [[Shape(cable[6:-6], 255, 0.096)]]}.get(rule, [])
    sites = [(centres[0], 0.1), (centres[1], 0.1), (cable[16], 0.06)]
    facts = {"left slots": k, "right slots": k_right, "cable": colour_k,
             "configuration": f"k={k}, bowed {'down' if bow > 0 else 'up'}"}
    return Scene(_jitter((85, 90, 95), rng), shapes, regions, sites, facts, pose=FIXTURE_POSE)

def _draw_scene(scene: Scene, rng, width: int) -> tuple[np.ndarray, list[np.ndarray], list[tuple]]:
    """Rasterise a scene under a random pose (shift, rotation, scale) of the whole layout."""
    turn, reach, scales = scene.pose
    angle, scale = rng.uniform(-turn, turn), rng.uniform(*scales)
    shift = rng.uniform(-reach, reach, 2)

    def pixels(points):
        return (_rotate(np.asarray(points) * scale, angle) + 0.5 + shift) * width

    def draw(draw_on, shape, fill, outline):
        xy = pixels(shape.points).ravel().tolist()
        if shape.width:
            draw_on.line(xy, fill=fill, width=max(1, round(shape.width * scale * width)), joint="curve")
        else:
            draw_on.polygon(xy, fill=fill, outline=outline, width=max(1, width // 256))

    canvas = Image.new("RGB", (width, width), scene.background)
    painter = ImageDraw.Draw(canvas)
    for shape in scene.shapes:
        draw(painter, shape, shape.fill, _shade(shape.fill, 0.75) if not shape.width else None)
    masks = []
    for region in scene.regions:
        mask = Image.new("L", (width, width), 0)
        for shape in region:
            draw(ImageDraw.Draw(mask), shape, 255, 255)
        masks.append(np.asarray(mask) > 127)
    sites = [(*pixels([centre])[0], radius * scale * width) for centre, radius in scene.sites]
    return np.asarray(canvas, dtype=np.float32), masks, sites


# ---------------------------------------------------------------------------
# The texture category: crops of scikit-image's brick photograph.

def _texture_crop(source: Image.Image, rng, width: int, angle: float) -> np.ndarray:
    """A ``width`` x ``width`` view of a random part of ``source``, turned by ``angle`` (radians)."""
    side = rng.uniform(0.5, 0.6) * source.width  # in source pixels
    reach = side * 0.71  # half the diagonal: the turned view stays inside the photograph
    cx, cy = rng.uniform(reach, source.width - reach, 2)
    c, s = np.cos(angle), np.sin(angle)
    step = side / width
    flip = rng.choice([-1, 1], 2)  # mirrored bricks are still vertical bricks
    a, b, d, e = step * c * flip[0], -step * s * flip[1], step * s * flip[0], step * c * flip[1]
    # PIL maps each output pixel (x, y) to the source pixel (a x + b y + o1, d x + e y + o2)
    affine = (a, b, cx - (a + b) * width / 2, d, e, cy - (d + e) * width / 2)
    view = source.transform((width, width), Image.AFFINE, affine, resample=Image.BILINEAR)
    return np.asarray(view, dtype=np.float32)


@functools.cache
def _brick_photograph() -> Image.Image:
    from skimage import data  # imported here: only this category needs it

    return Image.fromarray(data.brick())


def _brick_wall(rng, logical: bool, width: int) -> tuple[np.ndarray, list[np.ndarray], list[tuple]]:
    """Rule: the bricks run vertically. The logical anomaly is a patch of the same bricks turned by 90°."""
    source = _brick_photograph()
    gray = _texture_crop(source, rng, width, rng.uniform(-0.07, 0.07))
    masks = []
    if logical:
        turned = _texture_crop(source, rng, width, np.pi / 2 + rng.uniform(-0.07, 0.07))
        w, h = (rng.uniform(0.25, 0.4, 2) * width).astype(int)
        x, y = rng.integers(0, width - w), rng.integers(0, width - h)
        mask = np.zeros((width, width), dtype=bool)
        mask[y:y + h, x:x + w] = True
        gray = np.where(mask, turned, gray)
        masks = [mask]
    # the photograph is dark (mean 0.44): a colour brighter than white gives bricks of a natural brightness
    colour = (np.array([300, 170, 130]) + rng.uniform(-20, 20, 3)).astype(np.float32)
    canvas = np.minimum(gray[..., None] / 255 * colour, 255)
    sites = [(*rng.uniform(0.2, 0.8, 2) * width, 0.1 * width) for _ in range(4)]
    return canvas, masks, sites


# ---------------------------------------------------------------------------
# Structural defects. Each damages a window (float32 H x W x 3) around a site
# at (x, y) with item radius r, in window pixels, and returns it with its mask.

def _stroke(shape: tuple, points, thickness: float) -> np.ndarray:
    """Coverage (0..1) of a polyline ``thickness`` pixels wide."""
    layer = Image.new("L", shape[1::-1], 0)
    ImageDraw.Draw(layer).line(np.asarray(points).ravel().tolist(), fill=255, width=max(3, round(thickness)),
                               joint="curve")
    return np.asarray(layer, dtype=np.float32) / 255


def _disc(shape: tuple, centre, radius: float) -> np.ndarray:
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2


def _blend(window: np.ndarray, alpha: np.ndarray, colour) -> np.ndarray:
    alpha = alpha.astype(np.float32)[..., None]
    return window * (1 - alpha) + np.asarray(colour, dtype=np.float32) * alpha


def _walk(start, heading: float, steps: int, step: float, wander: float, rng) -> np.ndarray:
    """A random walk: gentle for scratches (small ``wander``), jagged for cracks."""
    headings = heading + np.cumsum(rng.normal(0, wander, steps))
    moves = step * np.stack([np.cos(headings), np.sin(headings)], 1)
    return np.vstack([start, start + np.cumsum(moves, 0)])


def _scratch(window, x, y, r, rng):
    heading = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(1.5, 2.5) * r
    start = np.array([x, y]) - 0.5 * length * np.array([np.cos(heading), np.sin(heading)])
    alpha = _stroke(window.shape, _walk(start, heading, 6, length / 6, 0.12, rng), 0.18 * r)
    colour = (235, 235, 228) if rng.random() < 0.5 else (35, 30, 28)
    return _blend(window, 0.85 * alpha, colour), alpha > 0.5


def _crack(window, x, y, r, rng):
    path = _walk(np.array([x, y]) + rng.uniform(-0.4, 0.4, 2) * r, rng.uniform(0, 2 * np.pi), 10, 0.25 * r, 0.7, rng)
    alpha = _stroke(window.shape, path, 0.12 * r)
    if rng.random() < 0.5:  # a branch from the middle
        branch = _walk(path[5], rng.uniform(0, 2 * np.pi), 5, 0.2 * r, 0.7, rng)
        alpha = np.maximum(alpha, _stroke(window.shape, branch, 0.12 * r))
    return _blend(window, 0.9 * alpha, (25, 20, 18)), alpha > 0.5


def _hole(window, x, y, r, rng):
    centre = np.array([x, y]) + rng.uniform(-0.35, 0.35, 2) * r
    radius = rng.uniform(0.3, 0.45) * r
    inner, outer = _disc(window.shape, centre, radius), _disc(window.shape, centre, radius * 1.2)
    damaged = _blend(window, 0.6 * (outer & ~inner), (215, 210, 200))  # a torn, lighter rim
    return _blend(damaged, 0.95 * inner, (22, 20, 18)), outer


def _stain(window, x, y, r, rng):
    layer = Image.new("L", window.shape[1::-1], 0)
    painter = ImageDraw.Draw(layer)
    for _ in range(rng.integers(3, 6)):
        centre = np.array([x, y]) + rng.uniform(-0.3, 0.3, 2) * r
        blob = _ellipse(centre, *(rng.uniform(0.3, 0.55, 2) * r), rng.uniform(0, np.pi), n=24)
        painter.polygon(blob.ravel().tolist(), fill=255)
    coverage = np.asarray(layer.filter(ImageFilter.GaussianBlur(max(1.0, 0.08 * r))), dtype=np.float32) / 255
    colour = [(90, 60, 30), (120, 45, 30), (55, 55, 60)][rng.integers(3)]
    return _blend(window, rng.uniform(0.55, 0.8) * coverage, colour), coverage > 0.5


def _deformation(window, x, y, r, rng):
    """A dent or bulge on an item's outline: pixels within a radius are pulled from (or pushed to) its centre."""
    direction = rng.uniform(0, 2 * np.pi)
    cx, cy = np.array([x, y]) + 0.9 * r * np.array([np.cos(direction), np.sin(direction)])
    radius = rng.uniform(0.6, 0.8) * r
    power = rng.choice([rng.uniform(0.3, 0.5), rng.uniform(2.0, 3.0)])  # < 1 bulges, > 1 pinches
    # only the disc moves, and every pixel in it is taken from inside it: warp its bounding box alone
    x0, y0 = max(0, int(cx - radius)), max(0, int(cy - radius))
    yy, xx = np.mgrid[y0:min(window.shape[0], int(cy + radius) + 1),
                      x0:min(window.shape[1], int(cx + radius) + 1)].astype(np.float32)
    distance = np.hypot(xx - cx, yy - cy) / radius
    inside = distance < 1
    pull = np.where(inside, np.maximum(distance, 1e-3) ** (power - 1), 1.0)
    sources = [cy + (yy - cy) * pull, cx + (xx - cx) * pull]
    box = (slice(y0, y0 + yy.shape[0]), slice(x0, x0 + yy.shape[1]))
    warped = window.copy()
    warped[box] = np.stack([ndimage.map_coordinates(window[..., c], sources, order=1, mode="nearest")
                            for c in range(3)], -1)
    mask = np.zeros(window.shape[:2], dtype=bool)
    mask[box] = inside & (np.abs(warped[box] - window[box]).max(-1) > 20)
    return warped, mask


STRUCTURAL_DEFECTS = (_scratch, _crack, _hole, _stain, _deformation)


def _damage(canvas: np.ndarray, sites, rng, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """One structural defect at a random site, redrawn until its mask is visible at the output size."""
    while True:
        x, y, r = sites[rng.integers(len(sites))]
        defect = STRUCTURAL_DEFECTS[rng.integers(len(STRUCTURAL_DEFECTS))]
        # every defect stays within 3.5 r of its site: damage only that window, it is much faster
        x0, y0 = max(0, int(x - 3.5 * r)), max(0, int(y - 3.5 * r))
        x1, y1 = min(canvas.shape[1], int(x + 3.5 * r) + 1), min(canvas.shape[0], int(y + 3.5 * r) + 1)
        window, window_mask = defect(canvas[y0:y1, x0:x1], x - x0, y - y0, r, rng)
        mask = np.zeros(canvas.shape[:2], dtype=bool)
        mask[y0:y1, x0:x1] = window_mask
        if (_downsample(mask.astype(np.float32), supersample) >= 0.5).sum() >= MIN_MASK_PIXELS:
            damaged = canvas.copy()
            damaged[y0:y1, x0:x1] = window
            return damaged, mask


# ---------------------------------------------------------------------------
# From a category to image and mask files.

_SCENES = {"drink_bottle": _drink_bottle, "lunch_box": _lunch_box, "pin_tray": _pin_tray, "bolt_kit": _bolt_kit,
           "wire_splice": _wire_splice,
           "pegboard": _pegboard, "fruit_tray": _fruit_tray, "cable_pair": _cable_pair, "bead_string": _bead_string}
# split -> (folder, kind of image, seed code); the code keeps each split's images independent of the others' counts
_SPLITS = {"train": ("train/good", "good", 0), "validation": ("validation/good", "good", 1),
           "good": ("test/good", "good", 2), "logical": ("test/logical_anomalies", "logical", 3),
           "structural": ("test/structural_anomalies", "structural", 4)}


def _downsample(array: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (the antialiasing of the supersampled drawing)."""
    # strided sums, rows then columns: much faster than a mean over the axes of a reshaped array
    rows = sum(array[i::factor] for i in range(factor))
    return sum(rows[:, j::factor] for j in range(factor)) / factor ** 2


def _light(image: np.ndarray, rng) -> np.ndarray:
    """Global brightness, a linear light gradient, a colour cast and sensor noise."""
    ramp = np.linspace(-1, 1, image.shape[0], dtype=np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    # python floats keep the arithmetic in float32 (numpy scalars would promote it to float64)
    gradient = float(np.cos(direction)) * ramp[None, :] + float(np.sin(direction)) * ramp[:, None]
    light = float(rng.uniform(0.85, 1.15)) * (1 + float(rng.uniform(0, 0.12)) * gradient)
    cast = rng.normal(1, 0.03, 3).astype(np.float32)
    # uniform noise of standard deviation 4: as good as Gaussian here, and four times cheaper to draw
    noise = (rng.random(image.shape, dtype=np.float32) - 0.5) * np.float32(4 * 12 ** 0.5)
    return np.clip(np.round(image * light[..., None] * cast + noise), 0, 255).astype(np.uint8)


# The logical rules a category can break, and the check of each category's rule on a scene's facts.
RULES = {"drink_bottle": ("mismatch",), "lunch_box": ("missing", "swapped", "mix"),
         "pin_tray": ("missing", "surplus"), "bolt_kit": ("missing", "surplus", "swapped"),
         "wire_splice": ("mismatch", "colour"),
         "pegboard": ("mismatch",), "fruit_tray": ("missing", "surplus"),
         "cable_pair": ("mismatch", "colour", "missing"), "bead_string": ("mismatch", "reversed"),
         "brick_wall": ("turned",)}
_RULE_HOLDS = {
    "drink_bottle": lambda f: f["liquid"] == f["label"],
    "lunch_box": lambda f: (f["oranges"], f["bananas"], f["granola"]) == (2, 1, True),
    "pin_tray": lambda f: f["pins"] == [1, 1, 1, 1],
    "bolt_kit": lambda f: (f["bolts"], f["nuts"], f["washers"]) == (2, 2, 2),
    "wire_splice": lambda f: f["left slots"] == f["right slots"] == f["cable"],
    "pegboard": lambda f: f["top"] == f["bottom"],
    "fruit_tray": lambda f: f["oranges"] == f["nuts"],
    "cable_pair": lambda f: f["left slots"] == f["right slots"] == f["cable"],
    "bead_string": lambda f: f["colours"][:3] == f["colours"][3:],
}


def rule_holds(category: str, facts: dict) -> bool:
    """Whether an object scene's facts (``Scene.facts``) obey its category's rule.

    It reads only what the scene shows (colours, counts, slots), not how the
    scene was drawn: it is the check that every logical anomaly can be decided
    from the whole image, and that no normal image breaks the rule.
    """
    return bool(_RULE_HOLDS[category](facts))


def scene(category: str, kind: str, rng, rule: str | None = None) -> Scene:
    """The scene of one object image: ``kind`` is ``good``, ``logical`` or ``structural``.

    A logical scene breaks ``rule`` (one of ``RULES[category]``), drawn at random when None.
    """
    if kind == "logical" and rule is None:
        rule = RULES[category][rng.integers(len(RULES[category]))]
    if rule is not None and (kind != "logical" or rule not in RULES[category]):
        raise DataError(f"rule {rule!r} is not a logical anomaly of {category}; expected one of "
                        f"{', '.join(RULES[category])} with kind 'logical'")
    return _SCENES[category](rng, rule)


def render(category: str, kind: str, rng, image_size: int = 256,
           rule: str | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """One image of ``category`` (uint8, S x S x 3) and its masks (bool, S x S; none when normal).

    ``kind`` is ``good``, ``logical`` or ``structural``; a logical image breaks
    ``rule`` (one of ``RULES[category]``), drawn at random when None.
    """
    width = image_size * SUPERSAMPLE
    if category == "brick_wall":
        if rule not in (None, "turned") or (rule and kind != "logical"):
            raise DataError(f"rule {rule!r} is not a logical anomaly of brick_wall; expected 'turned' "
                            f"with kind 'logical'")
        canvas, masks, sites = _brick_wall(rng, kind == "logical", width)
    else:
        canvas, masks, sites = _draw_scene(scene(category, kind, rng, rule), rng, width)
    if kind == "structural":
        canvas, mask = _damage(canvas, sites, rng, SUPERSAMPLE)
        masks = [mask]
    image = _light(_downsample(canvas, SUPERSAMPLE), rng)
    return image, [_downsample(m.astype(np.float32), SUPERSAMPLE) >= 0.5 for m in masks]


def generate(root, categories=None, seed: int = 0, image_size: int = 256,
             n_train: int = 200, n_val: int = 50, n_test: int = 150) -> Path:
    """Write the synthetic benchmark under ``root`` in MVTec LOCO's layout and return ``root``.

    Per category: ``train/good`` (n_train), ``validation/good`` (n_val), and
    ``n_test`` test images, a third each logical and structural anomalies and
    the rest ``test/good``; ``ground_truth/<type>/<NNN>/000.png`` (and
    ``001.png``... when a rule is broken in two places) holds the masks, 255 on
    the anomaly; ``.synthetic.json`` records what made the category (``stamp``).
    A category folder that the generator made is replaced, any other is refused; each is
    written to a temporary folder first, so an interrupted run leaves no half category.
    """
    root = Path(root)
    categories = list(SYNTHETIC_CATEGORIES if categories is None else categories)
    unknown = [c for c in categories if c not in SYNTHETIC_CATEGORIES]
    if unknown:
        raise DataError(f"unknown synthetic categories {', '.join(unknown)}; "
                        f"expected some of {', '.join(SYNTHETIC_CATEGORIES)}")
    if image_size < MIN_IMAGE_SIZE or min(n_train, n_val) < 1 or n_test < 3:
        raise DataError(f"cannot generate {image_size} px images with n_train={n_train}, n_val={n_val}, "
                        f"n_test={n_test}; expected image_size >= {MIN_IMAGE_SIZE}, n_train and n_val >= 1 "
                        f"and n_test >= 3 (a third each good, logical, structural)")
    counts = split_counts(n_train, n_val, n_test)
    for path in (root, *(root / c for c in categories)):
        if path.exists() and not path.is_dir():
            raise DataError(f"{path} is a file; expected a folder for the synthetic benchmark")
    # Only a folder this generator made is replaced: it never deletes anything else.
    foreign = [str(root / c) for c in categories if (root / c).is_dir() and not (root / c / STAMP_FILE).is_file()]
    if foreign:
        raise DataError(f"{', '.join(foreign)}: not made by the synthetic generator (no {STAMP_FILE}); expected no "
                        f"folder there, or one the generator made: move it away or choose another root")
    root.mkdir(parents=True, exist_ok=True)
    for category in categories:
        scratch = root / f".{category}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        for split, count in counts.items():
            _write_split(scratch, category, split, count, seed, image_size)
        made_by = {"generator": GENERATOR_VERSION, "seed": seed, "image_size": image_size, "counts": counts}
        (scratch / STAMP_FILE).write_text(json.dumps(made_by, sort_keys=True) + "\n")
        shutil.rmtree(root / category, ignore_errors=True)
        scratch.rename(root / category)
    return root


# The valid global configurations of each LOCO-like object category (``Scene.facts["configuration"]``).
CONFIGURATIONS = {"drink_bottle": 3, "lunch_box": 6, "pin_tray": 1, "bolt_kit": 6, "wire_splice": 6}


def configurations(category: str, n: int, seed: int = 0, split: str = "train") -> collections.Counter:
    """How often each global configuration occurs among the first ``n`` images of a split that
    ``generate(seed=seed)`` writes (a LOCO-like object category; the scenes alone are drawn, fast)."""
    if category not in CONFIGURATIONS:
        raise DataError(f"{category!r} has no counted configurations; expected one of {', '.join(CONFIGURATIONS)}")
    kind = _SPLITS[split][1]
    return collections.Counter(scene(category, kind, image_rng(seed, category, split, i)).facts["configuration"]
                               for i in range(n))


def image_rng(seed: int, category: str, split: str, index: int) -> np.random.Generator:
    """The random generator of one image that ``generate`` writes: seeded by (seed, category, split, index),
    so that a category or a split can be drawn on its own."""
    return np.random.default_rng([seed, _SEED_CODES[category], _SPLITS[split][2], index])


def split_counts(n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    """Images per split: the test set is a third each logical and structural anomalies, the rest normal."""
    n_anomalous = n_test // 3
    return {"train": n_train, "validation": n_val, "good": n_test - 2 * n_anomalous,
            "logical": n_anomalous, "structural": n_anomalous}


def stamp(root, category: str) -> dict | None:
    """What made ``root/category`` (``generate``'s stamp), or None when it carries none (an older generator)."""
    path = Path(root) / category / STAMP_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_split(root: Path, category: str, split: str, count: int, seed: int, image_size: int) -> None:
    """``count`` images of a split into its folder, their masks into ``ground_truth/<folder name>/<NNN>/`` (LOCO)."""
    folder, kind, _ = _SPLITS[split]
    folder = root / folder
    folder.mkdir(parents=True)
    for index in range(count):
        image, masks = render(category, kind, image_rng(seed, category, split, index), image_size)
        name = f"{index:03d}"
        Image.fromarray(image).save(folder / f"{name}.png", compress_level=1)  # level 1: fast, nearly as small
        for number, mask in enumerate(masks):
            mask_dir = folder.parent.parent / "ground_truth" / folder.name / name
            mask_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask.astype(np.uint8) * 255).save(mask_dir / f"{number:03d}.png")
