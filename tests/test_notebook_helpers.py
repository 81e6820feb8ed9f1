import pytest

from dlib.methods import vae
from dlib.notebook import show_source, source


def test_source_is_the_real_code():
    text = source(vae.gaussian_kl)
    assert text.startswith("def gaussian_kl(")
    assert "logvar.exp()" in text
    both = source(vae.gaussian_kl, vae.bernoulli_nll)
    assert "def bernoulli_nll" in both and both.index("gaussian_kl") < both.index("bernoulli_nll")
    # methods are dedented
    assert source(vae.VAE.terms).startswith("def terms(")
    assert show_source(vae.gaussian_kl) is not None


def test_source_needs_an_object():
    with pytest.raises(ValueError):
        source()
