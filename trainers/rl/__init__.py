"""Reinforcement-learning parts of the PPO trainer: environments with habitat's PointNav reward, the rollout
buffer with GAE and recurrent minibatches, and DD-PPO's preemption counter."""
