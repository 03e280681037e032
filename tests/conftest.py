"""Shared fixtures: one tiny Kit for the session, and a tiny model saved to a folder.

Code that loads the default source (the notebooks, the lab and app servers) gets the offline "nano"
model; unit tests use "tiny", which is built in milliseconds.
"""

import os

os.environ.setdefault("KANDINSKY_LAB_SOURCE", "nano")
os.environ.setdefault("KANDINSKY_LAB_TRAIN_STEPS", "8")  # notebook 09's training runs: seconds in the suite (benchmarks.finetune trains for real)

import pytest

import kandinsky_lab as kl

FAST = dict(prior_steps=2, steps=3)  # settings that keep a tiny run in tens of milliseconds


@pytest.fixture(scope="session")
def kit():
    return kl.load("tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """The tiny model written by save_pretrained, as a hub download or a user's folder would be laid out.
    Saved from a Kit of its own: the shared one may have loaded task UNets by then (Kit.save writes those too)."""
    return kl.load("tiny", device="cpu").save(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def fresh_kit():
    """A Kit of its own, for tests that count prior runs or fill the cache."""
    return kl.load("tiny", device="cpu")
