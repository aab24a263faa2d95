"""InternVLA-N1 System 2: a Qwen2.5-VL that answers pixel goals in a look-down image, turns or STOP."""
