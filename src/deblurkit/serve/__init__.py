"""`deblur serve`: a local web page and HTTP API over the same engine as the CLI.

Needs the optional extra: pip install 'deblurkit[serve]' (FastAPI, uvicorn,
python-multipart)."""
