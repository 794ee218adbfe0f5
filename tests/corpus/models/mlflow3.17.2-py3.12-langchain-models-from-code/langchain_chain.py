"""A langchain chain (prompt | fake LLM | parser) for models-from-code: no real LLM."""

import mlflow
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate

prompt = PromptTemplate.from_template("Is this review positive or negative? {review}")
# one response, so every call answers the same whatever the order of requests
chain = prompt | FakeListLLM(responses=["positive"]) | StrOutputParser()
mlflow.models.set_model(chain)
