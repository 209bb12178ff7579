from _servers import RecordingSleep
from conftest import API
x: RecordingSleep = RecordingSleep()
y: str = API
