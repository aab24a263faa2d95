"""Procedural houses, scene files and the Habitat test scenes."""

import hashlib
import json
import shutil
from collections import Counter, deque

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from envs.scenes import (
    Instance,
    Room,
    Scene,
    SceneLoadError,
    SceneMesh,
    generate_house,
    load_scene,
    save_scene,
)
from envs.scenes.palette import OBJECT_COLORS, WALL_COLORS

WALL_HALF = 0.05  # default wall thickness / 2
AGENT_RADIUS = 0.1
SEEDS = [0, 1, 2, 3, 11]
# sha256 of the mesh arrays of generate_house(5); see test_generator_output_is_pinned.
GOLDEN_DIGEST_SEED_5 = "cb3e5ab008ccf4602602c45009d8d679a650f4f7eb5b0b041195c71c9168bb47"
REQUIRED = {
    "kitchen": {"counter", "fridge", "stove"},
    "bedroom": {"bed", "wardrobe"},
    "bathroom": {"toilet", "sink", "bathtub"},
    "living room": {"sofa", "tv", "armchair"},
    "office": {"desk", "computer", "bookcase"},
    "dining room": {"table", "cabinet"},
    "hallway": {"coat rack", "shelf", "plant"},
    "laundry room": {"washing machine", "dryer"},
}


@pytest.fixture(scope="module")
def houses() -> dict[int, Scene]:
    out = {seed: generate_house(seed) for seed in SEEDS}
    out[100] = generate_house(100, n_rooms=8)
    out[101] = generate_house(101, n_rooms=2)
    return out


def mesh_digest(scene: Scene) -> str:
    h = hashlib.sha256()
    for m in scene.meshes:
        for a in (m.vertices, m.faces, m.colors, m.semantic_ids):
            h.update(a.tobytes())
    return h.hexdigest()


def assert_same_annotations(a: Scene, b: Scene) -> None:
    assert a.name == b.name
    assert np.array_equal(a.doors, b.doors)
    assert [(r.id, r.type, r.name, r.color, r.floor_y) for r in a.rooms] == [
        (r.id, r.type, r.name, r.color, r.floor_y) for r in b.rooms
    ]
    assert all(np.array_equal(r.polygon, s.polygon) for r, s in zip(a.rooms, b.rooms, strict=True))
    assert sorted(a.instances) == sorted(b.instances)
    for k, i in a.instances.items():
        j = b.instances[k]
        assert (i.id, i.category, i.room, i.color, i.is_object) == (
            j.id,
            j.category,
            j.room,
            j.color,
            j.is_object,
        )
        assert np.array_equal(i.position, j.position) and np.array_equal(i.size, j.size)


def assert_same_scene(a: Scene, b: Scene) -> None:
    assert len(a.meshes) == len(b.meshes)
    for m, n in zip(a.meshes, b.meshes, strict=True):
        for key in ("vertices", "faces", "colors", "semantic_ids"):
            x, y = getattr(m, key), getattr(n, key)
            assert x.dtype == y.dtype and np.array_equal(x, y), key
        assert m.double_sided == n.double_sided
    assert_same_annotations(a, b)


# ---------------------------------------------------------------- generation


def test_same_seed_gives_identical_scene_and_different_seeds_differ(houses):
    again = generate_house(SEEDS[1])
    assert_same_scene(houses[SEEDS[1]], again)
    assert mesh_digest(houses[SEEDS[1]]) == mesh_digest(again)
    assert len({mesh_digest(houses[s]) for s in SEEDS}) == len(SEEDS)
    assert houses[0].name == "house_00000" and houses[11].name == "house_00011"


def test_generator_output_is_pinned():
    # Episode datasets refer to generated houses by seed: a change here changes every such dataset. Update the
    # digest only with a deliberate change of the generator.
    assert mesh_digest(generate_house(5)) == GOLDEN_DIGEST_SEED_5


def test_room_counts_and_house_size():
    drawn = [len(generate_house(seed, furnish=False).rooms) for seed in range(20, 40)]
    assert min(drawn) >= 3 and max(drawn) <= 6 and len(set(drawn)) >= 3
    for n in range(2, 9):
        scene = generate_house(50 + n, n_rooms=n, furnish=False)
        assert len(scene.rooms) == n
        lo, hi = scene.bounds()
        assert 6.0 <= hi[0] - lo[0] <= 17.0 and 6.0 <= hi[2] - lo[2] <= 17.0
        assert lo[1] == 0.0 and hi[1] == pytest.approx(2.6)


def test_rooms_are_named_typed_and_counter_clockwise(houses):
    for scene in houses.values():
        names = [r.name for r in scene.rooms]
        assert len(set(names)) == len(names)
        assert [r.id for r in scene.rooms] == list(range(len(scene.rooms)))
        assert all(r.type in REQUIRED and r.name.endswith(r.type) for r in scene.rooms)
        assert len({r.color for r in scene.rooms}) == len(scene.rooms)
        assert all(r.color in WALL_COLORS for r in scene.rooms)
        for r in scene.rooms:
            x, z = r.polygon[:, 0].astype(np.float64), r.polygon[:, 1].astype(np.float64)
            # Counter-clockwise seen from above (looking down -y) is a negative shoelace sum in (x, z).
            assert np.sum(x * np.roll(z, -1) - np.roll(x, -1) * z) < 0
            assert min(np.ptp(x), np.ptp(z)) >= 2.5 - 1e-5


def test_semantic_ids_resolve_and_structure_is_annotated(houses):
    for scene in houses.values():
        ids = scene.face_semantic_ids()
        assert set(np.unique(ids).tolist()) == set(scene.instances)
        assert all(k == i.id and k > 0 for k, i in scene.instances.items())
        for room in scene.rooms:
            cats = Counter(
                i.category for i in scene.instances.values() if i.room == room.id and not i.is_object
            )
            assert cats["floor"] == cats["wall"] == cats["ceiling"] == 1
        for inst in scene.instances.values():
            tri = scene.triangles()[ids == inst.id].reshape(-1, 3)
            assert np.allclose(inst.position, (tri.min(0) + tri.max(0)) / 2, atol=1e-5)
            assert np.allclose(inst.size, tri.max(0) - tri.min(0), atol=1e-5)


def test_objects_carry_named_colours_on_their_faces(houses):
    for scene in houses.values():
        objects = scene.objects()
        assert objects and all(o.color in OBJECT_COLORS for o in objects)
        keys = [(o.room, o.category, o.color) for o in objects]
        assert len(set(keys)) == len(keys), "an object must be groundable by (room, category, colour)"
        for mesh in scene.meshes:
            for o in objects:
                faces = mesh.faces[mesh.semantic_ids == o.id]
                if len(faces):
                    colours = {tuple(c) for c in mesh.colors[faces.ravel()].tolist()}
                    assert OBJECT_COLORS[o.color] in colours, (o.category, o.color)


def test_rooms_hold_their_required_furniture():
    missing, total = 0, 0
    for seed in range(200, 215):
        scene = generate_house(seed)
        for room in scene.rooms:
            cats = {o.category for o in scene.objects() if o.room == room.id}
            total += len(REQUIRED[room.type])
            missing += len(REQUIRED[room.type] - cats)
    assert total > 100 and missing <= 0.05 * total


def _door_axis(door: np.ndarray, room: Room) -> str | None:
    """'x' when the doorway lies on a wall of constant x of the room, 'z' for constant z, None if not."""
    (x0, z0), (x1, z1) = room.polygon.min(0), room.polygon.max(0)
    x, z = float(door[0]), float(door[2])
    if min(abs(x - x0), abs(x - x1)) < 1e-4 and z0 < z < z1:
        return "x"
    if min(abs(z - z0), abs(z - z1)) < 1e-4 and x0 < x < x1:
        return "z"
    return None


def test_rooms_are_connected_through_doorways(houses):
    for scene in houses.values():
        edges = []
        for door in scene.doors:
            assert door[1] == 0.0
            rooms = [r.id for r in scene.rooms if _door_axis(door, r) is not None]
            assert len(rooms) == 2, "a doorway joins exactly two rooms"
            edges.append(rooms)
        seen, todo = {0}, deque([0])
        while todo:
            r = todo.popleft()
            for a, b in edges:
                for u, v in ((a, b), (b, a)):
                    if u == r and v not in seen:
                        seen.add(v)
                        todo.append(v)
        assert seen == set(range(len(scene.rooms)))


def test_objects_stay_in_their_room_and_off_doorways(houses):
    for scene in houses.values():
        for o in scene.objects():
            room = scene.rooms[o.room]
            lo, hi = o.position - o.size / 2, o.position + o.size / 2
            (x0, z0), (x1, z1) = room.polygon.min(0), room.polygon.max(0)
            assert x0 + WALL_HALF - 1e-4 <= lo[0] and hi[0] <= x1 - WALL_HALF + 1e-4
            assert z0 + WALL_HALF - 1e-4 <= lo[2] and hi[2] <= z1 - WALL_HALF + 1e-4
            assert lo[1] >= -1e-6
            for door in scene.doors:
                axis = _door_axis(door, room)
                if axis is None:
                    continue
                half = np.array([0.5, 0.45]) if axis == "x" else np.array([0.45, 0.5])  # (x, z) half extents
                centre = door[[0, 2]]
                overlap = np.all(lo[[0, 2]] < centre + half) and np.all(centre - half < hi[[0, 2]])
                assert not overlap, f"{o.category} blocks a doorway of the {room.name}"


def _walk_grid(scene: Scene, room: Room, res: float = 0.05):
    """Cells of the room where a disc of AGENT_RADIUS fits between walls and objects, and the cell centres."""
    (x0, z0), (x1, z1) = room.polygon.min(0) + WALL_HALF, room.polygon.max(0) - WALL_HALF
    xs, zs = np.arange(x0 + res / 2, x1, res), np.arange(z0 + res / 2, z1, res)
    gx, gz = np.meshgrid(xs, zs)
    free = np.ones(gx.shape, bool)
    for o in scene.objects():
        lo, hi = o.position - o.size / 2, o.position + o.size / 2
        if o.room == room.id and lo[1] < 1.5:
            free &= ~((gx >= lo[0]) & (gx <= hi[0]) & (gz >= lo[2]) & (gz <= hi[2]))
    clearance = ndimage.distance_transform_edt(np.pad(free, 1))[1:-1, 1:-1] * res - res / 2
    return clearance >= AGENT_RADIUS, gx, gz


def test_agent_can_walk_between_doorways_and_reach_every_object(houses):
    for scene in houses.values():
        for room in scene.rooms:
            ok, gx, gz = _walk_grid(scene, room)
            labels, _ = ndimage.label(ok)
            centre = room.polygon.mean(0)
            door_labels = set()
            for door in scene.doors:
                axis = _door_axis(door, room)
                if axis is None:
                    continue
                p = door[[0, 2]].astype(np.float64)
                k = 0 if axis == "x" else 1
                p[k] += 0.2 * np.sign(centre[k] - p[k])  # 20 cm into the room
                d2 = (gx - p[0]) ** 2 + (gz - p[1]) ** 2
                door_labels.add(int(labels.flat[np.argmin(d2)]))
            assert len(door_labels) == 1 and 0 not in door_labels, f"doorways of the {room.name} are cut off"
            reach = labels == door_labels.pop()
            for o in scene.objects():
                if o.room != room.id:
                    continue
                lo, hi = o.position - o.size / 2, o.position + o.size / 2
                dx = np.maximum(np.maximum(lo[0] - gx, gx - hi[0]), 0)
                dz = np.maximum(np.maximum(lo[2] - gz, gz - hi[2]), 0)
                assert np.any(reach & (np.hypot(dx, dz) <= 1.0)), f"{o.color} {o.category} is out of reach"


def _ray_hits(origins: np.ndarray, direction: np.ndarray, tri: np.ndarray, max_t: float) -> np.ndarray:
    """Whether each ray origin + t * direction (0 < t <= max_t) crosses a triangle (Moller-Trumbore)."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    keep = np.abs(det) > 1e-9
    tri, e1, e2, p, det = tri[keep], e1[keep], e2[keep], p[keep], det[keep]
    s = origins[:, None, :] - tri[None, :, 0]
    u = np.einsum("rti,ti->rt", s, p) / det
    q = np.cross(s, e1[None])
    v = np.einsum("i,rti->rt", direction, q) / det
    t = np.einsum("ti,rti->rt", e2, q) / det
    return np.any((u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0) & (t <= max_t), axis=1)


def test_outer_walls_are_closed(houses):
    for seed in (0, 100):
        scene = houses[seed]
        ids = scene.face_semantic_ids()
        walls = [k for k, i in scene.instances.items() if i.category == "wall"]
        tri = scene.triangles()[np.isin(ids, walls)].astype(np.float64)
        (x0, _, z0), (x1, _, z1) = scene.bounds()
        for y in (0.3, 1.2, 2.3):
            for direction, starts in (
                ((0, 0, -1), [(x, y, z0 + 0.3) for x in np.arange(x0 + 0.1, x1 - 0.1, 0.1)]),
                ((0, 0, 1), [(x, y, z1 - 0.3) for x in np.arange(x0 + 0.1, x1 - 0.1, 0.1)]),
                ((-1, 0, 0), [(x0 + 0.3, y, z) for z in np.arange(z0 + 0.1, z1 - 0.1, 0.1)]),
                ((1, 0, 0), [(x1 - 0.3, y, z) for z in np.arange(z0 + 0.1, z1 - 0.1, 0.1)]),
            ):
                hits = _ray_hits(np.array(starts), np.array(direction, np.float64), tri, 0.5)
                assert hits.all(), f"house {seed}: gap in the outer wall at height {y}"


def test_triangle_budget_and_options(houses):
    for scene in houses.values():
        assert 1500 <= scene.n_triangles <= 20000
    assert np.mean([houses[s].n_triangles for s in SEEDS]) >= 4000
    bare = generate_house(3, furnish=False)
    assert not [i for i in bare.instances.values() if i.is_object]
    tall = generate_house(3, wall_height=3.0, door_height=None, furnish=False)
    assert tall.bounds()[1][1] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1,), {}, "seed"),
        ((1.5,), {}, "seed"),
        ((1,), {"n_rooms": 1}, "n_rooms"),
        ((1,), {"n_rooms": 9}, "n_rooms"),
        ((1,), {"n_rooms": True}, "n_rooms"),
        ((1,), {"colour": "red"}, "unknown house option.*valid options"),
        ((1,), {"wall_height": 1.0}, "wall_height"),
        ((1,), {"door_width": (1.2, 0.9)}, "door_width"),
    ],
)
def test_bad_generator_arguments_raise(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_house(*args, **kwargs)


# ---------------------------------------------------------------- scene files


def test_save_load_round_trip_is_exact(houses, tmp_path):
    scene = houses[SEEDS[0]]
    glb = save_scene(scene, tmp_path / "sub" / "house")
    assert glb == tmp_path / "sub" / "house.glb"
    assert sorted(p.name for p in glb.parent.iterdir()) == ["house.glb", "house.scene.json"]
    loaded = load_scene(tmp_path / "sub" / "house.glb")
    assert_same_scene(scene, loaded)
    assert loaded.source == str(glb)
    assert_same_scene(scene, load_scene(tmp_path / "sub" / "house"))
    # Other glTF readers see one node per (mesh, semantic id) run, with the vertex colours.
    tm = trimesh.load(glb, force="scene")
    assert len(tm.graph.nodes_geometry) == sum(len(np.unique(m.semantic_ids)) for m in scene.meshes)
    save_scene(loaded, glb)  # overwriting in place keeps the pair consistent
    assert_same_scene(scene, load_scene(glb))


def test_round_trip_of_a_hand_made_scene_with_texture_and_interleaved_ids(tmp_path):
    rng = np.random.default_rng(0)
    verts = rng.uniform(-1, 1, (12, 3))
    faces = np.array([[0, 1, 2], [3, 4, 5], [0, 2, 3], [6, 7, 8], [9, 10, 11]])
    uvs = rng.uniform(0, 1, (12, 2))
    texture = rng.integers(0, 256, (8, 16, 3))
    mesh = SceneMesh(verts, faces, rng.integers(0, 256, (12, 3)), [4, 4, 7, 4, 9], uvs, texture)
    plain = SceneMesh(verts[:3] + 5, [[0, 1, 2]], [[255, 0, 0]] * 3, [2])
    scene = Scene(
        [mesh, plain],
        {
            k: Instance(k, f"thing{k}", -1, "red", np.full(3, k * 0.1), np.ones(3), k > 3)
            for k in (2, 4, 7, 9)
        },
        [Room(0, "office", "office", "white", [(0, 1), (1, 1), (1, 0), (0, 0)], 0.5)],
        name="handmade",
        doors=[(0.5, 0.0, 1.0)],
    )
    loaded = load_scene(save_scene(scene, tmp_path / "handmade.glb"))
    assert_same_scene(scene, loaded)
    assert np.array_equal(loaded.meshes[0].texture, texture)
    assert np.allclose(loaded.meshes[0].uvs, uvs, atol=1e-6)
    assert loaded.meshes[1].texture is None


def test_save_rejects_an_empty_scene(tmp_path):
    with pytest.raises(ValueError, match="no triangles"):
        save_scene(Scene([]), tmp_path / "empty")
    assert list(tmp_path.iterdir()) == []


def test_habitat_simple_room_is_rotated_from_z_up(habitat_scenes):
    scene = load_scene(habitat_scenes / "simple_room.glb")
    lo, hi = scene.bounds()
    ext = hi - lo
    assert ext[1] == pytest.approx(2.2, abs=0.05)
    assert ext[0] == pytest.approx(10.5, abs=0.1) and ext[2] == pytest.approx(10.85, abs=0.1)
    assert len(scene.meshes) == 7 and scene.n_triangles == 84
    assert not scene.instances and set(np.unique(scene.face_semantic_ids())) == {0}
    # The file's materials: six meshes use baseColorFactor 0.8 grey, one has no material (glTF default white).
    colours = sorted(tuple(np.unique(m.colors, axis=0)[0]) for m in scene.meshes)
    assert colours == [(204, 204, 204)] * 6 + [(255, 255, 255)]
    # The stage config says z-up; an explicit up_axis does not override it.
    again = load_scene(habitat_scenes / "simple_room.glb", up_axis="y")
    assert np.array_equal(again.bounds(), scene.bounds())


def test_habitat_stage_is_scaled_and_green(habitat_scenes):
    scene = load_scene(habitat_scenes / "stage_floor1.glb")
    lo, hi = scene.bounds()
    assert hi[0] - lo[0] == pytest.approx(40.0, abs=0.1) and hi[2] - lo[2] == pytest.approx(40.0, abs=0.1)
    colours = np.concatenate([m.colors for m in scene.meshes]).astype(int)
    assert np.all(colours[:, 1] - colours[:, 0] > 60), "baseColorFactor (0.42, 0.8, 0.53) is green"


def test_habitat_chair_keeps_its_texture(habitat_scenes, tmp_path):
    scene = load_scene(habitat_scenes / "chair.glb")
    (mesh,) = scene.meshes
    assert mesh.texture is not None and mesh.texture.shape == (1024, 1024, 3)
    assert mesh.uvs is not None and mesh.uvs.min() >= 0.0 and mesh.uvs.max() <= 1.0
    sampled = mesh.texture[(mesh.uvs[:, 1] * 1023).astype(int), (mesh.uvs[:, 0] * 1023).astype(int)].astype(
        int
    )
    assert sampled.std() > 10 and np.ptp(sampled.mean(0)) > 10, "texels under the uvs are coloured, not grey"
    ext = np.ptp(scene.bounds(), axis=0)
    assert 0.3 < ext[0] < 0.7 and 0.7 < ext[1] < 1.1
    # Without a stage config, up_axis turns a copy: (x, y, z) -> (x, z, -y).
    shutil.copy(habitat_scenes / "chair.glb", tmp_path / "chair.glb")
    z_up = load_scene(tmp_path / "chair.glb", up_axis="z")
    v, w = scene.meshes[0].vertices, z_up.meshes[0].vertices
    assert np.allclose(w, np.stack([v[:, 0], v[:, 2], -v[:, 1]], 1), atol=1e-6)


def test_stage_config_up_and_scale_are_applied(habitat_scenes, tmp_path):
    shutil.copy(habitat_scenes / "chair.glb", tmp_path / "chair.glb")
    plain = load_scene(tmp_path / "chair.glb").meshes[0].vertices
    (tmp_path / "chair.stage_config.json").write_text(json.dumps({"up": [0, 0, 1], "scale": [2, 3, 4]}))
    v = load_scene(tmp_path / "chair.glb").meshes[0].vertices
    assert np.allclose(v, np.stack([2 * plain[:, 0], 4 * plain[:, 2], -3 * plain[:, 1]], 1), atol=1e-5)
    (tmp_path / "chair.stage_config.json").write_text(json.dumps({"up": [0, 0, 1], "scale": "big"}))
    with pytest.raises(SceneLoadError, match=r"chair\.stage_config\.json.*'scale'"):
        load_scene(tmp_path / "chair.glb")


# ---------------------------------------------------------------- errors


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.glb"):
        load_scene(tmp_path / "nowhere.glb")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("truncated", "not a readable glTF/GLB"),
        ("text", "not a readable glTF/GLB"),
        ("empty", "not a readable glTF/GLB"),
        ("no_triangles", "no triangles"),
    ],
)
def test_unreadable_files_raise_scene_load_error(habitat_scenes, tmp_path, content, match):
    path = tmp_path / "broken.glb"
    if content == "truncated":
        path.write_bytes((habitat_scenes / "chair.glb").read_bytes()[:3000])
    elif content == "text":
        path.write_text("solid cube\nthis is not a GLB file\n")
    elif content == "empty":
        path.write_bytes(b"")
    else:
        path = tmp_path / "broken.gltf"
        path.write_text(json.dumps({"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": []}]}))
    with pytest.raises(SceneLoadError, match=match) as info:
        load_scene(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_corrupt_sidecar_names_the_sidecar(houses, tmp_path):
    glb = save_scene(houses[101], tmp_path / "h")
    sidecar = tmp_path / "h.scene.json"
    data = json.loads(sidecar.read_text())
    data["meshes"][0]["primitives"][0]["node"] = "missing_node"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(SceneLoadError, match=r"h\.scene\.json.*missing_node"):
        load_scene(glb)
    sidecar.write_text("{not json")
    with pytest.raises(SceneLoadError, match=r"h\.scene\.json"):
        load_scene(glb)


@pytest.mark.parametrize("up_axis", ["x", "Z", "up", 1])
def test_bad_up_axis_is_rejected(habitat_scenes, up_axis):
    with pytest.raises(ValueError, match="up_axis must be None, 'y' or 'z'"):
        load_scene(habitat_scenes / "chair.glb", up_axis=up_axis)
