"""Cluttered arenas: bit-deterministic from the seed, navigable, annotated, saved and loaded like houses."""

import numpy as np
import pytest

from envs.nav.grid import AgentBody, NavGrid
from envs.scenes.arena import MIN_LARGEST_REGION, ArenaOptions, arena_navigability, generate_arena
from envs.scenes.io import load_scene, save_scene


def _bytes(scene) -> bytes:
    m = scene.meshes[0]
    return m.vertices.tobytes() + m.faces.tobytes() + m.colors.tobytes() + m.semantic_ids.tobytes()


@pytest.mark.parametrize("difficulty", ["easy", "hard"])
def test_same_seed_gives_identical_mesh_bytes_and_files(difficulty, tmp_path):
    a, b = generate_arena(3, difficulty=difficulty), generate_arena(3, difficulty=difficulty)
    assert _bytes(a) == _bytes(b)
    assert _bytes(a) != _bytes(generate_arena(4, difficulty=difficulty))
    pa, pb = save_scene(a, tmp_path / "a" / a.name), save_scene(b, tmp_path / "b" / b.name)
    assert pa.read_bytes() == pb.read_bytes()


def test_hard_arenas_are_denser_than_easy_ones():
    easy = [len(generate_arena(s, difficulty="easy").objects()) for s in range(3)]
    hard = [len(generate_arena(s, difficulty="hard").objects()) for s in range(3)]
    assert min(easy) >= 8 and sum(hard) > 1.3 * sum(easy)
    free_easy = np.mean([arena_navigability(generate_arena(s, difficulty="easy"))[0] for s in range(3)])
    free_hard = np.mean([arena_navigability(generate_arena(s, difficulty="hard"))[0] for s in range(3)])
    assert free_hard < free_easy


def test_an_arena_is_one_large_navigable_region_with_obstacles_in_it():
    scene = generate_arena(0, difficulty="hard")
    grid = NavGrid.from_scene(scene, AgentBody(), 0.05)
    free = grid.navigable.sum()
    assert (grid.region == grid.largest_region).sum() >= MIN_LARGEST_REGION * free
    # Obstacles really block: the centre of every box/cylinder footprint is off the main region (the inside
    # of a solid taller than the body may be a navigable island, never joined to it).
    solid = [i for i in scene.objects() if i.category in ("box", "cylinder")]
    assert solid
    for inst in solid:
        i, j = grid.cell_of(float(inst.position[0]), float(inst.position[2]))
        assert grid.region[i, j] != grid.largest_region, inst


def test_annotations_survive_save_and_load(tmp_path):
    scene = generate_arena(1, difficulty="easy", size=6.0)
    loaded = load_scene(save_scene(scene, tmp_path / scene.name))
    assert loaded.name == "arena_easy_00001"
    assert {k: (v.category, v.color) for k, v in loaded.instances.items()} == {
        k: (v.category, v.color) for k, v in scene.instances.items()
    }
    assert loaded.instances[1].category == "floor" and loaded.instances[2].category == "wall"
    assert set(np.unique(loaded.face_semantic_ids())) == set(scene.instances)
    np.testing.assert_array_equal(loaded.triangles(), scene.triangles())


def test_bad_options_and_hopeless_arenas_fail_clearly():
    with pytest.raises(ValueError, match="difficulty must be one of"):
        ArenaOptions(difficulty="medium")
    with pytest.raises(ValueError, match="size must be in"):
        generate_arena(0, size=2.0)
    with pytest.raises(ValueError, match="unknown arena option"):
        generate_arena(0, sizes=8.0)
    with pytest.raises(ValueError, match="seed must be"):
        generate_arena(-1)
    with pytest.raises(RuntimeError, match="no navigable draw in 2 tries"):
        generate_arena(0, difficulty="hard", size=4.0, density=1.0, max_tries=2)
