"""RDP: labels, decoding, the DDPM round trip, guidance, acting state and checkpoint errors."""

import math

import numpy as np
import pytest
import torch

from agents import load_agent, make_agent
from agents.base import MOVE_FORWARD, STOP, TURN_LEFT, TURN_RIGHT
from agents.rdp.diffusion import guided_noise, make_scheduler, sample_steps
from agents.rdp.labels import (
    DecodeRules,
    StepSemantics,
    action_history,
    action_steps,
    decode_plan,
    step_labels,
    trajectory_odometry,
)
from agents.rdp.losses import expert_episodes, trajectory_inputs
from trainers.data.frames import future_targets

TEXTS = ["walk past the sofa and turn left", "go up the stairs, then stop at the door"]
SEM = StepSemantics(horizon=4)
C15, S15 = math.cos(math.radians(15)), math.sin(math.radians(15))
F, L, R = MOVE_FORWARD, TURN_LEFT, TURN_RIGHT


def labels(actions, executed=None, positions=None, yaws=None, sem=SEM):
    actions = np.array(actions)
    executed = actions if executed is None else np.array(executed)
    prev = np.concatenate([[-1], executed[:-1]])
    positions = np.zeros((len(actions), 3)) if positions is None else np.asarray(positions)
    yaws = np.zeros(len(actions)) if yaws is None else np.asarray(yaws)
    return step_labels(actions, prev, positions, yaws, sem)


def test_labels_straight_and_stop_with_the_end_clamped():
    steps, mask = labels([F, F, F, STOP])
    np.testing.assert_allclose(steps[0], [[0.25, 0, 0]] * 3 + [[0, 0, 0]])
    np.testing.assert_allclose(steps[2], [[0.25, 0, 0]] + [[0, 0, 0]] * 3)  # past the end: no motion
    assert mask.all()  # the episode ended with STOP: the clamped steps are trained on zero motion
    _, mask = labels([F, F, F, STOP], sem=StepSemantics(horizon=4, supervise_after_end=False))
    assert mask[0].all() and mask[2].tolist() == [True, True, False, False]


def test_labels_turns_rotate_the_later_steps_in_the_frame_of_t():
    steps, _ = labels([L, F, F, STOP])
    np.testing.assert_allclose(
        steps[0],
        [[0, 0, 0.27], [0.25 * C15, 0.25 * S15, 0], [0.25 * C15, 0.25 * S15, 0], [0, 0, 0]],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        steps[1, 0], [0.25, 0, 0], atol=1e-6
    )  # in its own frame the forward is straight
    steps, _ = labels([R, F, STOP])
    np.testing.assert_allclose(steps[0, :2], [[0, 0, -0.27], [0.25 * C15, -0.25 * S15, 0]], atol=1e-6)


def test_labels_of_an_unfinished_episode_mask_the_clamped_end():
    steps, mask = labels([F, F])
    assert mask.tolist() == [[True, True, False, False], [True, False, False, False]]
    np.testing.assert_allclose(steps[1, 0], [0.25, 0, 0])  # the last step: the expert's action, nominally


def test_labels_follow_the_expert_only_until_the_executed_action_differs():
    # the expert says F F F STOP; at step 1 the learner turned left instead (a DAgger episode)
    steps, mask = labels([F, F, F, STOP], executed=[F, L, F, STOP])
    assert mask[0].tolist() == [True, True, False, False]
    np.testing.assert_allclose(steps[0, 1], [0.25, 0, 0])  # the expert's action at the deviation
    assert mask[1].tolist() == [True, False, False, False]
    assert mask[2].all()


def test_unsnapped_labels_are_the_pose_steps_and_sum_to_the_future_poses():
    yaw = math.radians(15)
    positions = [
        [0, 0, 0],
        [0, 0, -0.25],
        [0, 0, -0.25],
        [-0.05 * math.sin(yaw), 0, -0.25 - 0.05 * math.cos(yaw)],
    ]
    yaws = [0, 0, yaw, yaw]  # F, L, then a forward that slid along a wall (0.05 m), then STOP
    sem = StepSemantics(horizon=4, snap=False)
    steps, mask = labels([F, L, F, STOP], positions=positions, yaws=yaws, sem=sem)
    np.testing.assert_allclose(
        steps[0, :3], [[0.25, 0, 0], [0, 0, yaw], [0.05 * C15, 0.05 * S15, 0]], atol=1e-6
    )
    future, _ = future_targets(np.asarray(positions, np.float32), np.asarray(yaws, np.float32), 0, 3)
    np.testing.assert_allclose(np.cumsum(steps[0, :3, :2], axis=0), future[:, :2], atol=1e-6)
    snapped, _ = labels([F, L, F, STOP], positions=positions, yaws=yaws)
    np.testing.assert_allclose(snapped[0, 2], [0.25 * C15, 0.25 * S15, 0], atol=1e-6)  # snapped: a full step
    assert mask.all()


def test_normalisation_and_previous_action_steps():
    np.testing.assert_allclose(SEM.normalise([[0.25, -0.25, 0.27], [1.0, 0, -1.0]]), [[1, -1, 1], [1, 0, -1]])
    np.testing.assert_allclose(
        action_steps(np.array([-1, STOP, F, L, R]), SEM),
        [[0, 0, 0], [0, 0, 0], [0.25, 0, 0], [0, 0, 0.27], [0, 0, -0.27]],
    )
    history = action_history(np.array([[-1, F, L, R, F]]), 3)
    assert history[0, 4].tolist() == [F, R, L] and history[0, 1].tolist() == [F, -1, -1]


def test_decoding_rules():
    rules = DecodeRules(n_actions=4)
    plan = np.array(
        [[0.25, 0, 0], [0.05, 0.02, 0.27], [0, 0, -0.2], [0.03, 0.2, 0], [0.25, 0, 0]] + [[0.25, 0, 0]] * 3
    )
    assert decode_plan(plan, 0.1, rules) == [F, L, R, F]  # |dy| = 0.2 >= 0.1 is a forward
    assert decode_plan(plan, 0.9, rules) == [STOP]  # stop progress above 0.85
    assert decode_plan(plan, 0.1, DecodeRules(n_actions=2)) == [F, L]
    near_zero = np.array([[0.25, 0, 0], [0, 0, 0.05], [0.01, 0, 0], [0, 0.02, -0.03]] + [[0.25, 0, 0]] * 4)
    assert decode_plan(near_zero, 0.1, rules) == [F, STOP]  # three near-zero steps from step 1
    assert decode_plan(near_zero[:3], 0.1, rules)[:2] == [F, L]  # a window cut by the plan's end is no stop


def test_ddpm_round_trip_with_an_oracle_denoiser_recovers_the_sample():
    scheduler = make_scheduler(20)
    assert (scheduler.config.beta_schedule, scheduler.config.prediction_type) == (
        "squaredcos_cap_v2",
        "epsilon",
    )
    x0 = torch.rand(3, 8, 3) * 1.8 - 0.9
    alphas = scheduler.alphas_cumprod

    def oracle(sample, timestep, cond):  # the noise that makes ``sample`` out of x0
        a = alphas[timestep].view(-1, 1, 1)
        return (sample - a.sqrt() * x0) / (1 - a).sqrt()

    noise, t = torch.randn(3, 8, 3), torch.tensor([0, 7, 19])
    noisy = scheduler.add_noise(x0, noise, t)
    torch.testing.assert_close(oracle(noisy, t, None), noise, atol=1e-4, rtol=1e-4)
    generators = [torch.Generator().manual_seed(k) for k in range(3)]
    out = sample_steps(oracle, scheduler, torch.zeros(3, 1, 1), None, (8, 3), 20, 1.0, generators)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)
    # the head of the small default predicts the clean sample: an oracle returning x0 recovers it too
    clean = make_scheduler(20, "sample")
    assert clean.config.prediction_type == "sample"
    generators = [torch.Generator().manual_seed(k) for k in range(3)]
    out = sample_steps(lambda s, t, c: x0, clean, torch.zeros(3, 1, 1), None, (8, 3), 20, 1.0, generators)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="prediction_type='v_prediction': expected one of"):
        make_scheduler(20, "v_prediction")  # diffusers knows it; no head here is trained for it


def build(**overrides):
    torch.manual_seed(0)
    agent = make_agent("rdp", {"stop_threshold": 1.0, **overrides}, instructions=TEXTS)
    return agent.eval()


def obs(rng, b=2, size=32):
    return {
        "rgb": rng.integers(0, 256, (b, size, size, 3), dtype=np.uint8),
        "depth": (rng.random((b, size, size, 1)) * 5).astype(np.float32),
        "instruction_text": TEXTS[:b],
        "odometry": rng.normal(0, 1, (b, 3)).astype(np.float32),
    }


def test_guidance_scale_one_is_exactly_the_conditional_prediction():
    agent = build()
    head = agent.net.head
    cond, uncond = torch.randn(2, 13, 64), torch.randn(2, 13, 64)
    x, t = torch.randn(2, 8, 3), torch.tensor([3, 11])
    with torch.no_grad():
        conditional, unconditional = head(x, t, cond), head(x, t, uncond)
        assert torch.equal(guided_noise(head, x, t, cond, uncond, 1.0), conditional)
        guided = guided_noise(head, x, t, cond, uncond, 1.5)
    torch.testing.assert_close(guided, unconditional + 1.5 * (conditional - unconditional))
    assert not torch.allclose(guided, conditional)


def test_acting_keeps_a_plan_per_env_and_record_actions_drops_it():
    # an untrained ε head samples plans that move (an untrained sample head predicts about 0: a STOP)
    agent = build(len_traj_act=3, stop_window=8, prediction_type="epsilon")
    calls = []
    agent.net.head.register_forward_hook(lambda *_: calls.append(1))
    rng = np.random.default_rng(0)
    agent.reset(2)
    with torch.inference_mode():
        first = agent.act(obs(rng))
        assert len(calls) == 20 and [len(p) for p in agent._plans] == [2, 2]  # 20 guided denoising steps
        assert agent._history[:, 0].tolist() == first.tolist()
        agent.act(obs(rng))
        assert len(calls) == 20  # executing the plan
        other = (agent._last + 1) % 4
        agent.record_actions(np.array([agent._last[0], other[1]]))
        assert [len(p) for p in agent._plans] == [1, 0] and agent._history[1, 0] == other[1]
        agent.act(obs(rng))
        assert len(calls) == 40  # env 1 re-planned (with the recorded history), env 0 went on
        agent.reset(2, env_ids=[0])
        assert len(agent._plans[0]) == 0 and agent._history[0].tolist() == [-1] * 4
        assert agent._hidden[0].abs().sum() == 0 and agent._hidden[1].abs().sum() > 0


def test_deterministic_plans_do_not_depend_on_the_global_generator():
    agent = build(guidance_scale=1.0)
    step = obs(np.random.default_rng(1), b=1)
    plans = []
    for seed in (0, 1):
        agent.reset(1)
        torch.manual_seed(seed)
        with torch.inference_mode():
            plans.append((agent.act(step).tolist(), list(agent._plans[0])))
    assert plans[0] == plans[1]


def test_step_by_step_gru_matches_the_training_forward():
    agent = build()
    rng = np.random.default_rng(2)
    actions = np.array([[F, L, F, F, STOP], [R, F, F, L, STOP]])
    positions = np.cumsum(rng.normal(0, 0.2, (2, 5, 3)), axis=1).astype(np.float32)
    yaws = rng.normal(0, 1, (2, 5)).astype(np.float32)
    frames = obs(rng, b=10)
    rgb, depth = frames["rgb"].reshape(2, 5, 32, 32, 3), frames["depth"].reshape(2, 5, 32, 32, 1)
    mask = np.ones((2, 5), bool)
    prev = np.concatenate([np.full((2, 1), -1), actions[:, :-1]], axis=1)
    with torch.no_grad():
        vision = agent.net.encode_frames(*agent.frames(rgb, depth)).view(2, 5, 5, -1)
        odometry = trajectory_odometry(positions, yaws, mask.sum(1))
        states, _ = agent.net.recurrent(
            vision, agent.steps(prev), torch.from_numpy(odometry), torch.zeros(2, 128)
        )
    agent.reset(2)
    with torch.inference_mode():
        for t in range(5):
            step = {
                "rgb": rgb[:, t],
                "depth": depth[:, t],
                "instruction_text": TEXTS,
                "odometry": odometry[:, t],
            }
            agent.act(step)
            torch.testing.assert_close(agent._hidden, states[:, t], atol=1e-5, rtol=1e-4)
            agent.record_actions(actions[:, t])


def test_stop_progress_trains_only_on_episodes_that_follow_the_expert_to_its_stop():
    actions = np.array([[F, L, F, STOP], [F, F, L, F], [F, F, STOP, 0], [F, L, F, STOP]])
    executed = np.array([[F, L, F, STOP], [F, F, L, F], [F, F, STOP, 0], [F, R, F, STOP]])
    prev = np.concatenate([np.full((4, 1), -1), executed[:, :-1]], axis=1)
    lengths = np.array([4, 4, 3, 4])
    # expert; time limit before the expert's STOP; expert (padded); the agent turned right once
    assert expert_episodes(actions, prev, lengths).tolist() == [True, False, True, False]


def _trajectory_batch(rng, executed):
    actions = np.array([[F, L, F, F, STOP], [R, F, F, L, STOP]])
    frames = obs(rng, b=10)
    return {
        "mask": np.ones((2, 5), bool),
        "instruction_text": TEXTS,
        "actions": actions,
        "prev_actions": np.concatenate([np.full((2, 1), -1), executed[:, :-1]], axis=1),
        "positions": np.cumsum(rng.normal(0, 0.2, (2, 5, 3)), axis=1).astype(np.float32),
        "yaws": rng.normal(0, 1, (2, 5)).astype(np.float32),
        "rgb": frames["rgb"].reshape(2, 5, 32, 32, 3),
        "depth": frames["depth"].reshape(2, 5, 32, 32, 1),
    }


def test_the_auxiliary_action_loss_and_the_stop_mask_enter_the_loss():
    rng = np.random.default_rng(4)
    expert = np.array([[F, L, F, F, STOP], [R, F, F, L, STOP]])
    off_path = np.array([[L, L, F, F, STOP], [L, F, F, L, STOP]])  # both episodes left the expert's path
    agent = build()  # eval mode: the auxiliary terms do not depend on the drawn noise
    _, info = agent.loss(_trajectory_batch(rng, expert))
    assert info["loss/action_ce"] > 0 and info["loss/stop_progress"] > 0
    _, info = agent.loss(_trajectory_batch(np.random.default_rng(4), off_path))
    assert info["loss/stop_progress"] == 0.0 and info["loss/action_ce"] > 0
    plain = build(action_loss_weight=0.0)
    assert plain.net.action_head is None
    _, info = plain.loss(_trajectory_batch(np.random.default_rng(4), expert))
    assert info["loss/action_ce"] == 0.0
    weighted = info["loss/progress"]
    with_ce = build()
    with_ce.load_state_dict(plain.state_dict(), strict=False)
    _, info = with_ce.loss(_trajectory_batch(np.random.default_rng(4), expert))
    assert info["loss/progress"] == pytest.approx(weighted + info["loss/action_ce"], rel=1e-5)


def test_errors_name_the_missing_key_and_the_wrong_checkpoint(tmp_path):
    agent = build()
    step = obs(np.random.default_rng(3))
    del step["odometry"]
    with pytest.raises(KeyError, match="odometry"):
        agent.act(step)
    batch = {"mask": np.ones((1, 2), bool), "instruction_text": ["go"], "actions": np.ones((1, 2), np.int64)}
    with pytest.raises(KeyError, match="positions"):
        trajectory_inputs(batch)
    make_agent("cma", instructions=TEXTS).save(tmp_path / "cma")
    with pytest.raises(TypeError, match="agent 'cma' is not a RDPAgent"):
        type(agent).load(tmp_path / "cma")
    agent.save(tmp_path / "rdp")
    config = (tmp_path / "rdp" / "config.json").read_text().replace('"hidden_size": 128', '"hidden_size": 64')
    (tmp_path / "rdp" / "config.json").write_text(config)
    with pytest.raises(ValueError, match="weights do not match"):
        load_agent(tmp_path / "rdp")


def test_the_paper_preset_has_the_published_sizes():
    from agents.rdp import RDPConfig

    c = RDPConfig.paper(clip_path="checkpoints/longclip-B")
    assert (c.rgb_encoder, c.text_encoder, c.clip_text_positions, c.clip_path) == (
        "clip",
        "clip",
        248,
        "checkpoints/longclip-B",
    )
    assert (c.token_size, c.hidden_size, c.head_size, c.head_layers, c.head_cond_layers, c.head_heads) == (
        512,
        512,
        512,
        3,
        1,
        8,
    )
    assert (c.depth_backbone, c.depth_size, c.depth_feature_size, c.depth_trainable) == (
        "resnet50",
        256,
        768,
        False,
    )
    assert (c.horizon, c.num_train_timesteps, c.guidance_scale, c.cfg_mask_prob, c.max_dyaw) == (
        8,
        20,
        1.5,
        0.25,
        0.27,
    )
    with pytest.raises(ValueError, match="RDPConfig.len_traj_act must be <= horizon"):
        RDPConfig(len_traj_act=9)


@pytest.mark.slow
def test_the_paper_model_counts_the_published_frozen_parts():
    from agents.rdp import RDPConfig
    from agents.rdp.measure import parameter_counts

    counts = parameter_counts(make_agent("rdp", RDPConfig.paper(), instructions=TEXTS))
    assert round(counts["total"], 2) == 197.85 and round(counts["trainable"], 2) == 41.47
    assert (
        round(counts["total"] - counts["trainable"], 2) == 156.38
    )  # CLIP ViT-B/16 towers + DD-PPO ResNet-50
