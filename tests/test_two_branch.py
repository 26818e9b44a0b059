"""The two-branch network (MA2MI's competitor, after MMNet): sizes, parameter counts, what each branch sees."""

from __future__ import annotations

import pytest
import torch

from mpt_utils.model import count_parameters
from mpt_utils.model.two_branch import TWO_BRANCH_SIZES, TwoBranchSize, build_two_branch


@pytest.mark.parametrize("size, total, action, position", [
    ("quick", 0.19e6, 0.08e6, 0.11e6),  # the module docstring's figures
    ("paper", 17.58e6, 11.17e6, 6.41e6),
])
def test_shapes_and_parameter_counts(size, total, action, position):
    torch.manual_seed(0)
    model = build_two_branch(size, num_classes=5).eval()
    side, grid, channels = model.size.image_size, model.size.grid, model.size.channels
    assert grid == 14  # MMNet's 14 x 14 map at both sizes
    onset, apex = torch.rand(2, 3, side, side), torch.rand(2, 3, side, side)
    fused = model.forward_features(onset, apex)
    assert fused.shape == (2, channels, grid, grid)
    attention = model.attention(fused)
    assert attention.shape == (2, grid, grid) and torch.allclose(attention.sum(dim=(1, 2)), torch.ones(2))
    assert model(onset, apex).shape == (2, 5)
    assert count_parameters(model) == pytest.approx(total, abs=0.005e6)
    assert count_parameters(model.action) == pytest.approx(action, abs=0.005e6)
    assert count_parameters(model.position) == pytest.approx(position, abs=0.005e6)


def test_the_position_branch_sees_only_the_onset_and_the_action_branch_only_the_difference():
    torch.manual_seed(0)
    model = build_two_branch("quick", num_classes=5).eval()
    side = model.size.image_size
    onset, apex = torch.rand(2, 3, side, side), torch.rand(2, 3, side, side)
    with torch.no_grad():
        position, action = model.position(onset), model.action(apex - onset)
        # another apex: the position map stays, the action map moves
        other_apex = apex + 0.3 * torch.rand_like(apex)
        assert torch.equal(model.position(onset), position)
        assert not torch.allclose(model.action(other_apex - onset), action, atol=1e-4)
        # the same change in both frames (a brighter recording): the action map stays, the position map moves
        brighter_onset, brighter_apex = onset + 0.2, apex + 0.2
        fused = model.forward_features(brighter_onset, brighter_apex)
        assert torch.allclose(model.action(brighter_apex - brighter_onset), action, atol=1e-5)
        assert not torch.allclose(model.position(brighter_onset), position, atol=1e-4)
        norm = model.normalise  # forward_features normalises both frames first; the mean cancels in the difference
        assert torch.allclose(model.action(norm(brighter_apex) - norm(brighter_onset)),
                              model.action(norm(apex) - norm(onset)), atol=1e-5)
        assert torch.allclose(fused, model.action(norm(apex) - norm(onset)) + model.position(norm(brighter_onset)),
                              atol=1e-5)


def test_bad_sizes_and_inputs_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match="unknown two-branch size 'huge'; choose one of"):
        build_two_branch("huge", 5)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        build_two_branch("quick", 1)
    with pytest.raises(ValueError, match="not divisible by the CNN's total stride 8"):
        TwoBranchSize(image_size=100, widths=(8, 16), strides=(1, 2), blocks=(1, 1))
    with pytest.raises(ValueError, match="one entry per stage"):
        TwoBranchSize(image_size=112, widths=(8, 16), strides=(1,), blocks=(1, 1))
    model = build_two_branch("quick", 3)
    side = TWO_BRANCH_SIZES["quick"].image_size
    with pytest.raises(ValueError, match=rf"apex must be \(B, 3, {side}, {side}\), got \(1, 3, 64, 64\)"):
        model(torch.rand(1, 3, side, side), torch.rand(1, 3, 64, 64))


def test_frames_are_read_as_uint8_or_in_0_1_and_every_tensor_is_saved():
    torch.manual_seed(0)
    model = build_two_branch("quick", num_classes=5, image_size=64).eval()
    assert model.size.grid == 8 and model.size.image_size == 64  # the ci profile's 64 px: the same layers
    frames = torch.randint(0, 256, (2, 2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        from_bytes = model(frames[0], frames[1])
        from_floats = model(frames[0].float() / 255, frames[1].float() / 255)
        pooled = model.forward_head(model.forward_features(frames[0], frames[1]), pre_logits=True)
    assert torch.allclose(from_bytes, from_floats, atol=1e-5) and pooled.shape == (2, model.size.channels)
    state = model.trainable_state_dict()
    assert set(state) == set(model.state_dict())  # every weight is trained, and batch norm's statistics are kept
    assert any(name.endswith("running_mean") for name in state) and "mean" not in state
