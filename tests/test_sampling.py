"""Noise for sampling: the truncation trick is bounded, and the generate CLI refuses tiny values."""
import numpy as np
import pytest

import sngan_gluon  # noqa: F401
from sngan_gluon.cli import EXIT_USER_ERROR
from sngan_gluon.cli import generate as generate_cli
from sngan_gluon.sampling import MIN_TRUNCATION, draw_noise


def test_truncated_noise_lies_within_the_bound_and_is_seeded():
    z = draw_noise(np.random.RandomState(0), 100, 128, truncation=MIN_TRUNCATION)
    assert z.shape == (100, 128) and z.dtype == np.float32
    assert np.abs(z).max() <= MIN_TRUNCATION and z.std() > MIN_TRUNCATION / 4
    again = draw_noise(np.random.RandomState(0), 100, 128, truncation=MIN_TRUNCATION)
    np.testing.assert_array_equal(z, again)


def test_untruncated_noise_is_the_plain_normal_draw():
    z = draw_noise(np.random.RandomState(3), 4, 8)
    np.testing.assert_array_equal(z, np.random.RandomState(3).normal(size=(4, 8)).astype("f4"))


@pytest.mark.parametrize("value", [1e-6, 0.0, -1.0, float("nan"), float("inf")])
def test_truncation_below_the_minimum_or_not_finite_is_refused(value):
    with pytest.raises(ValueError, match="--truncation must be a finite number >= 0.01"):
        draw_noise(np.random.RandomState(0), 2, 4, truncation=value)


@pytest.mark.parametrize("value,message", [("1e-6", ">= 0.01"), ("nan", "finite number")])
def test_generate_refuses_tiny_truncation_in_one_line(value, message, tmp_path, capsys):
    try:
        code = generate_cli.main(["--checkpoint", str(tmp_path), "--out",
                                  str(tmp_path / "g.png"), "--truncation", value])
    except SystemExit as exit_info:  # refused by the parser
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and message in err and len(err.strip().splitlines()) == 1
