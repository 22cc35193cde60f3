"""What the integration test folders share: the real ``ocrpipe serve`` process (:mod:`.server`), throw-away
databases and API keys (:mod:`.databases`) and generated images (:mod:`.images`).

One copy, so that a change to how the server is started, waited for or stopped reaches every folder.
Imported as ``testsupport`` (``tests`` is on pytest's ``pythonpath``); the name is one no library uses, since
a top-level test package named like a library (``grpc``) would shadow it."""
