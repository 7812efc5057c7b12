"""ChatGLM users: GLM-4 loads natively through the normal path; remote-code models need an explicit opt-in."""

import json
import logging

import pytest

from rag_app.llm import ModelUnavailableError, load_chat_backend
from rag_app.llm.local import load_local_model
from rag_app.settings import Settings

REMOTE_CONFIG = """
from transformers import PretrainedConfig


class ChatGLMConfig(PretrainedConfig):
    model_type = "chatglm"

    def __init__(self, num_layers=2, hidden_size=64, **kwargs):
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
"""


@pytest.fixture(scope="module")
def tiny_glm4(tmp_path_factory):
    """A random GLM-4 (model_type glm4, as THUDM/glm-4-9b-chat-hf) saved with a tokenizer and a chat template."""
    import torch
    from tiny_lm import sample_texts, train_tokenizer
    from transformers import AutoModelForCausalLM, Glm4Config

    tokenizer = train_tokenizer(sample_texts())
    config = Glm4Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )  # fmt: skip
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("glm4")
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_a_glm4_model_loads_and_answers_through_the_normal_path(tiny_glm4, clean_env):
    assert json.loads((tiny_glm4 / "config.json").read_text())["model_type"] == "glm4"
    loaded = load_chat_backend(Settings(_env_file=None, llm_model=str(tiny_glm4), llm_device="cpu", max_new_tokens=8))
    assert not loaded.extractive and loaded.backend.info.name == str(tiny_glm4)
    reply = loaded.backend.chat.invoke([{"role": "user", "content": "What was the gross margin?"}])
    assert isinstance(reply.content, str) and reply.usage_metadata["output_tokens"] > 0


@pytest.fixture
def remote_code_model(tmp_path):
    """A model folder whose config needs its own Python code, like THUDM/chatglm3-6b."""
    directory = tmp_path / "chatglm3"
    directory.mkdir()
    (directory / "configuration_chatglm.py").write_text(REMOTE_CONFIG)
    config = {"model_type": "chatglm", "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig"}}
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_a_remote_code_model_is_refused_with_the_setting_to_change(remote_code_model, clean_env):
    with pytest.raises(ModelUnavailableError, match="set RAG_LLM_TRUST_REMOTE_CODE=true if you trust it"):
        load_local_model(str(remote_code_model), device="cpu")
    assert Settings(_env_file=None).llm_trust_remote_code is False


def test_trusting_remote_code_is_an_explicit_opt_in_with_a_warning(remote_code_model, clean_env, caplog, monkeypatch):
    monkeypatch.setenv("RAG_LLM_TRUST_REMOTE_CODE", "true")
    settings = Settings(_env_file=None, llm_model=str(remote_code_model), llm_device="cpu", llm_backend="local")
    assert settings.llm_trust_remote_code is True
    with caplog.at_level(logging.WARNING), pytest.raises(ModelUnavailableError) as failure:
        load_chat_backend(settings)  # the config's code runs; the folder has no weights, so loading stops later
    assert "RAG_LLM_TRUST_REMOTE_CODE is on" in caplog.text
    assert "RAG_LLM_TRUST_REMOTE_CODE=true" not in str(failure.value)
